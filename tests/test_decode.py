import numpy as np
import pandas as pd
import pytest
from PIL import Image

from foodmtl.data.dataset import UNREADABLE, FoodDataset
from foodmtl.data.decode import decode_side, load_rgb
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.transforms import eval_transform, train_transform
from foodmtl.tasks import TaskSpec


@pytest.fixture
def photo(tmp_path):
    """A smooth 512x384 JPEG (gradients and a disc), so scaled and full decodes can be compared."""
    y, x = np.mgrid[0:384, 0:512].astype(np.float32)
    image = np.stack([x / 2, y / 1.5, 128 + 100 * np.sin(x / 40) * np.cos(y / 30)], axis=-1)
    image[(x - 300) ** 2 + (y - 200) ** 2 < 80 ** 2] = (230, 40, 40)
    path = tmp_path / "photo.jpg"
    Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(path, quality=92)
    return path


@pytest.mark.parametrize("min_side, shape", [(0, (384, 512)), (100, (192, 256)), (96, (96, 128)),
                                             (48, (48, 64)), (200, (384, 512))])
def test_scaled_decode_keeps_the_requested_short_side(photo, min_side, shape):
    image = load_rgb(str(photo), min_side)
    assert image.shape == (*shape, 3) and image.dtype == np.uint8
    assert min(image.shape[:2]) >= min_side


def test_scaled_decode_shows_the_same_picture_as_full_decode_and_resize(photo):
    small = load_rgb(str(photo), 96).astype(np.float32)
    full = Image.fromarray(load_rgb(str(photo)))
    reference = np.asarray(full.resize((128, 96), Image.Resampling.BOX)).astype(np.float32)
    assert np.abs(small - reference).mean() < 1.5  # a one-pixel shift gives ~3


def test_non_jpeg_and_grey_files_decode_to_rgb(tmp_path):
    Image.new("L", (300, 200), 90).save(tmp_path / "grey.jpg")
    Image.new("RGBA", (300, 200), (10, 20, 30, 40)).save(tmp_path / "alpha.png")
    grey, png = load_rgb(str(tmp_path / "grey.jpg"), 64), load_rgb(str(tmp_path / "alpha.png"), 64)
    assert grey.shape == (100, 150, 3) and (np.abs(grey.astype(int) - 90) <= 1).all()
    assert png.shape == (200, 300, 3) and png[0, 0].tolist() == [10, 20, 30]


@pytest.mark.parametrize("min_side", [0, 64])
def test_corrupt_files_raise_what_the_dataset_catches(photo, tmp_path, min_side):
    truncated, garbage = tmp_path / "truncated.jpg", tmp_path / "garbage.jpg"
    truncated.write_bytes(photo.read_bytes()[:2000])
    garbage.write_bytes(b"not a jpeg at all")
    for path in (truncated, garbage):
        with pytest.raises(UNREADABLE):
            load_rgb(str(path), min_side)


def test_decode_side_is_the_transforms_first_resize():
    assert decode_side(train_transform(128)) == 128
    assert decode_side(eval_transform(128)) == round(128 / 0.875)
    assert decode_side(None) == 0


def test_images_with_masks_are_decoded_at_the_masks_size(photo, tmp_path):
    mask = np.zeros((384, 512), np.uint8)
    mask[150:250, 250:350] = 1
    Image.fromarray(mask).save(tmp_path / "photo.png")
    frame = pd.DataFrame({"image": [str(photo)], "split": ["train"], "mask": [str(tmp_path / "photo.png")]})
    task = TaskSpec("segmentation", "segmentation", ("background", "tomato"))
    sample = FoodDataset(SampleTable(empty_columns(frame), {}), [task], eval_transform(32))[0]
    assert "skipped" not in sample
    assert set(sample["targets"]["segmentation"].unique().tolist()) == {0, 1}
