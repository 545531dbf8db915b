import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from foodmtl.data.dataset import CorruptImageError, FoodDataset, collate
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.transforms import eval_transform
from foodmtl.tasks import IGNORE_INDEX, SEG_IGNORE, TaskSpec

TASKS = [
    TaskSpec("dish", "multiclass", ("pho", "ramen")),
    TaskSpec("ingredients", "multilabel", ("egg", "noodle", "pork")),
    TaskSpec("segmentation", "segmentation", ("background", "egg", "noodle", "pork")),
]


def write_jpeg(path, size=(40, 30)):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture
def table(tmp_path):
    good = write_jpeg(tmp_path / "a.jpg")
    other = write_jpeg(tmp_path / "b.jpg")
    corrupt = tmp_path / "c.jpg"
    corrupt.write_bytes(open(good, "rb").read()[:200])  # truncated JPEG
    mask = np.zeros((30, 40), np.uint8)
    mask[5:20, 5:20] = 3
    Image.fromarray(mask).save(tmp_path / "a.png")
    frame = pd.DataFrame({
        "image": [good, other, str(corrupt)],
        "split": ["train"] * 3,
        "dish": ["ramen", None, "pho"],
        "ingredients": [("egg", "noodle"), None, ("pork",)],
        "mask": [str(tmp_path / "a.png"), None, None],
    })
    return SampleTable(empty_columns(frame), {})


def test_labels_are_encoded_and_missing_ones_masked(table):
    ds = FoodDataset(table, TASKS, eval_transform(32))
    first, second = ds[0], ds[1]
    assert first["targets"]["dish"].item() == 1
    assert first["targets"]["ingredients"].tolist() == [1.0, 1.0, 0.0]
    assert set(first["targets"]["segmentation"].unique().tolist()) <= {0, 3}
    assert second["targets"]["dish"].item() == IGNORE_INDEX
    assert (second["targets"]["ingredients"] == IGNORE_INDEX).all()
    assert (second["targets"]["segmentation"] == SEG_IGNORE).all()
    assert second["targets"]["segmentation"].shape == (32, 32)


def test_corrupt_image_is_skipped_and_reported(table):
    ds = FoodDataset(table, TASKS, eval_transform(32))
    batch = collate([ds[i] for i in range(3)])
    assert batch.images.shape == (2, 3, 32, 32)
    assert len(batch.skipped) == 1 and batch.skipped[0].startswith(f"cannot read image {table.frame['image'][2]}: ")
    assert set(batch.present) == {"dish", "ingredients", "segmentation"}


def test_strict_mode_names_the_file(table):
    ds = FoodDataset(table, TASKS, eval_transform(32), strict=True)
    with pytest.raises(CorruptImageError, match="c.jpg"):
        ds[2]


def test_present_lists_only_labelled_tasks(table):
    ds = FoodDataset(table, TASKS, eval_transform(32))
    batch = collate([ds[1]])
    assert batch.present == []
    assert torch.isfinite(batch.images).all()


def test_strict_mode_in_a_worker_names_the_file_on_the_first_line(table):
    """DataLoader workers re-raise as 'Caught CorruptImageError in DataLoader worker process 0.
    Original Traceback ...'; the message must still start with the file."""
    ds = FoodDataset(table, TASKS, eval_transform(32), strict=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=1, collate_fn=collate)
    with pytest.raises(CorruptImageError) as caught:
        next(iter(loader))
    first = str(caught.value).splitlines()[0]
    assert first.startswith(f"cannot read image {table.frame['image'][2]}: ")


@pytest.mark.parametrize("mask, expected", [
    (np.full((30, 40), 7, np.uint8), r"mask .*a\.png holds class id 7, outside 0\.\.3 \(and not the ignore value 255\)"),
    (np.zeros((40, 30), np.uint8), r"mask .*a\.png is 30x40 \(WxH\) but its image is 40x30"),
])
def test_a_mask_that_does_not_fit_is_skipped_naming_the_mask(table, mask, expected):
    Image.fromarray(mask).save(table.frame["mask"][0])
    item = FoodDataset(table, TASKS, eval_transform(32))[0]
    assert "skipped" in item and __import__("re").fullmatch(expected, item["skipped"]), item
    with pytest.raises(CorruptImageError, match=expected):
        FoodDataset(table, TASKS, eval_transform(32), strict=True)[0]


def test_a_16_bit_mask_keeps_class_255_and_maps_its_ignore_value(tmp_path):
    """A 499-class mask (AIcrowd-sized): 255 is a class, 65535 marks unlabelled pixels."""
    from foodmtl.data.masks import write_mask

    image = write_jpeg(tmp_path / "a.jpg", size=(32, 32))
    mask = np.full((32, 32), 498, np.uint16)
    mask[:16] = 255
    mask[:, :8] = 65535
    write_mask(tmp_path / "a.png", mask)
    frame = pd.DataFrame({"image": [image], "split": ["train"], "mask": [str(tmp_path / "a.png")]})
    spec = TaskSpec("segmentation", "segmentation", tuple(f"c{i}" for i in range(499)))
    target = FoodDataset(SampleTable(empty_columns(frame), {}), [spec], eval_transform(32))[0]["targets"]
    values = target["segmentation"]
    assert set(values.unique().tolist()) == {SEG_IGNORE, 255, 498}
    assert int((values == SEG_IGNORE).sum()) > 0 and int((values == 255).sum()) > 0
