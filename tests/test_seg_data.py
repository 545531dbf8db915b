"""FoodSeg103 reader and COCO -> semantic mask conversion, on format-exact miniatures."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from foodmtl.data.coco import coco_to_masks, read_coco_masks
from foodmtl.data.dataset import FoodDataset
from foodmtl.data.foodseg103 import read_foodseg103
from foodmtl.data.transforms import eval_transform
from foodmtl.tasks import SEG_IGNORE, TaskSpec

REPO = Path(__file__).resolve().parents[1]
FOODSEG_CLASSES = ["background", "candy", "egg tart", "french fries"]


def write_image(path: Path, size=(20, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path)
    return path


def write_mask(path: Path, mask: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8)).save(path)
    return path


# --- FoodSeg103 -------------------------------------------------------------------------------

@pytest.fixture
def foodseg_root(tmp_path):
    """Published layout: category_id.txt, Images/{img_dir,ann_dir}/{train,test}, ImageSets/."""
    root = tmp_path / "FoodSeg103"
    root.mkdir()
    # Tab-separated like the release, one line with a single space, a trailing blank line.
    (root / "category_id.txt").write_text("0\tbackground\n1\tcandy\n2 egg tart\n3\tfrench fries \n\n")
    (root / "ImageSets").mkdir()
    (root / "ImageSets" / "train.txt").write_text("00000000.jpg\n00000001.jpg\n")
    for split, stems in (("train", ["00000000", "00000001", "00000002"]), ("test", ["00000003"])):
        for k, stem in enumerate(stems):
            write_image(root / "Images" / "img_dir" / split / f"{stem}.jpg")
            if stem != "00000002":  # an image without its mask
                write_mask(root / "Images" / "ann_dir" / split / f"{stem}.png", np.full((16, 20), k % 4))
    return root


def test_foodseg103_rows_masks_and_vocab(foodseg_root, monkeypatch):
    def no_open(*args, **kwargs):
        raise AssertionError("the reader must not open images or masks")

    monkeypatch.setattr(Image, "open", no_open)
    with pytest.warns(UserWarning, match="1 of 3 images"):
        table = read_foodseg103(foodseg_root)
    frame = table.frame
    assert table.vocab == {"segmentation": FOODSEG_CLASSES}
    assert list(frame["split"]) == ["train", "train", "test"]
    assert set(frame["source"]) == {"foodseg103"}
    assert [Path(p).name for p in frame["image"]] == ["00000000.jpg", "00000001.jpg", "00000003.jpg"]
    for image, mask, split in zip(frame["image"], frame["mask"], frame["split"]):
        assert Path(mask) == foodseg_root / "Images" / "ann_dir" / split / f"{Path(image).stem}.png"
        assert Path(image).is_absolute() and Path(image).is_file()
    assert frame["dish"].isna().all()


def test_foodseg103_masks_load_as_segmentation_targets(foodseg_root):
    with pytest.warns(UserWarning):
        table = read_foodseg103(foodseg_root)
    task = TaskSpec("segmentation", "segmentation", tuple(table.vocab["segmentation"]))
    dataset = FoodDataset(table.split("train"), [task], eval_transform(16))
    assert dataset[1]["targets"]["segmentation"].unique().tolist() == [1]


def test_foodseg103_missing_root_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)nowhere.*To get it"):
        read_foodseg103(tmp_path / "nowhere")


@pytest.mark.filterwarnings("ignore:FoodSeg103")  # the train split's unmasked image
@pytest.mark.parametrize("missing", ["category_id.txt", "Images/ann_dir/test"])
def test_foodseg103_missing_part_is_named(foodseg_root, missing):
    target = foodseg_root / missing
    if target.is_dir():
        for f in target.iterdir():
            f.unlink()
        target.rmdir()
    else:
        target.unlink()
    with pytest.raises(FileNotFoundError, match=str(target)):
        read_foodseg103(foodseg_root)


def test_foodseg103_bad_category_line_is_reported(foodseg_root):
    (foodseg_root / "category_id.txt").write_text("0\tbackground\n2\tcandy\n")
    with pytest.raises(ValueError, match="line 2"):
        read_foodseg103(foodseg_root)


# --- COCO -------------------------------------------------------------------------------------

def box_polygon(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    flat = mask.flatten(order="F").astype(np.uint8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return {"size": list(mask.shape), "counts": np.diff(np.concatenate([[0], changes])).tolist()}


def compressed_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def rect(h, w, y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


@pytest.fixture
def coco_files(tmp_path):
    """Three images (one missing on disk): polygons, compressed RLE, uncompressed RLE, a crowd."""
    images = tmp_path / "images"
    h, w = 16, 20
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(images / name, (w, h))
    anns = [
        # image 1: the SMALL item comes first in the file; it must still end up on top.
        {"id": 1, "image_id": 1, "category_id": 3, "segmentation": box_polygon(4, 4, 8, 8), "area": 16,
         "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 7, "segmentation": box_polygon(1, 1, 15, 12), "area": 154, "iscrowd": 0},
        # image 2: compressed RLE, uncompressed RLE, and a crowd region over part of both.
        {"id": 3, "image_id": 2, "category_id": 12, "segmentation": compressed_rle(rect(h, w, 0, 8, 0, 10)),
         "area": 80, "iscrowd": 0},
        {"id": 4, "image_id": 2, "category_id": 3, "segmentation": uncompressed_rle(rect(h, w, 6, 16, 5, 20)),
         "area": 150, "iscrowd": 0},
        {"id": 5, "image_id": 2, "category_id": 7, "segmentation": uncompressed_rle(rect(h, w, 4, 10, 8, 14)),
         "area": 36, "iscrowd": 1},
    ]
    data = {
        "images": [{"id": i, "file_name": n, "height": h, "width": w}
                   for i, n in ((2, "b.jpg"), (1, "a.jpg"), (3, "c.jpg"), (4, "gone.jpg"))],
        "annotations": anns,
        # Non-contiguous ids, listed out of order: class ids follow ascending COCO id.
        "categories": [{"id": 12, "name": "fried egg"}, {"id": 3, "name": "basil"}, {"id": 7, "name": "rice"}],
    }
    ann_file = tmp_path / "instances_train.json"
    ann_file.write_text(json.dumps(data))
    return ann_file, images, data


def expected_mask(data: dict, image_id: int, order: list[int], crowd: list[int]) -> np.ndarray:
    """Paint with pycocotools directly in the given annotation order, then crowds as ignore."""
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    class_of = {3: 1, 7: 2, 12: 3}
    info = coco.imgs[image_id]
    out = np.zeros((info["height"], info["width"]), np.uint8)
    for ann_id in order:
        out[coco.annToMask(coco.anns[ann_id]) > 0] = class_of[coco.anns[ann_id]["category_id"]]
    for ann_id in crowd:
        out[coco.annToMask(coco.anns[ann_id]) > 0] = SEG_IGNORE
    return out


def read_png(path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "L"
        return np.asarray(img)


def test_coco_masks_match_pycocotools_pixelwise(coco_files, tmp_path):
    ann_file, images, data = coco_files
    out = tmp_path / "masks" / "train"
    with pytest.warns(UserWarning, match="1 of 4 images.*gone.jpg"):
        table = coco_to_masks(ann_file, images, out, "train")

    assert table.vocab == {"segmentation": ["background", "basil", "rice", "fried egg"]}
    assert [Path(p).name for p in table.frame["image"]] == ["a.jpg", "b.jpg", "c.jpg"]
    assert set(table.frame["split"]) == {"train"} and set(table.frame["source"]) == {"coco"}
    masks = {Path(p).stem: read_png(p) for p in table.frame["mask"]}
    np.testing.assert_array_equal(masks["a"], expected_mask(data, 1, order=[2, 1], crowd=[]))
    np.testing.assert_array_equal(masks["b"], expected_mask(data, 2, order=[4, 3], crowd=[5]))
    np.testing.assert_array_equal(masks["c"], np.zeros((16, 20), np.uint8))  # no annotation
    assert (masks["a"] == 1).sum() == 16 and (masks["b"] == SEG_IGNORE).sum() == 36  # small item and crowd visible
    assert (out / "category_id.txt").read_text().splitlines() == [
        "0\tbackground", "1\tbasil", "2\trice", "3\tfried egg"]


def test_read_coco_masks_rereads_the_converted_folder(coco_files, tmp_path):
    ann_file, images, _ = coco_files
    out = tmp_path / "masks"
    with pytest.warns(UserWarning):
        converted = coco_to_masks(ann_file, images, out, "val")
    reread = read_coco_masks(out, images, "val")
    assert reread.vocab == converted.vocab
    assert reread.frame.equals(converted.frame)


@pytest.mark.parametrize("which", ["ann", "images"])
def test_coco_missing_input_is_named(coco_files, tmp_path, which):
    ann_file, images, _ = coco_files
    missing = tmp_path / "absent"
    args = (missing, images) if which == "ann" else (ann_file, missing)
    with pytest.raises(FileNotFoundError, match=str(missing)):
        coco_to_masks(*args, tmp_path / "out", "train")


def test_data_prep_script_runs_from_the_repo_root(coco_files, tmp_path):
    ann_file, images, _ = coco_files
    out = tmp_path / "script_out"
    cmd = [sys.executable, "data_prep/coco_to_masks.py", "--ann", str(ann_file), "--images", str(images),
           "--out", str(out), "--split", "train"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "wrote 3 masks (3 categories + background)" in done.stdout
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png", "c.png"]
    cmd[3] = str(tmp_path / "missing.json")
    failed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and "missing.json" in failed.stderr


def test_coco_dataset_reads_converted_splits_and_names_the_conversion_command(tmp_path):
    from foodmtl.data.builder import DATASETS

    root = tmp_path / "coco"
    images = root / "train" / "images"
    images.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.jpg")
    with pytest.raises(FileNotFoundError, match="(?s)train/masks.*coco_to_masks.py"):
        DATASETS.get("coco")(str(root), None)
    (root / "train" / "masks").mkdir()
    Image.fromarray(np.ones((8, 8), np.uint8)).save(root / "train" / "masks" / "a.png")
    (root / "train" / "masks" / "category_id.txt").write_text("0\tbackground\n1\trice\n")
    table = DATASETS.get("coco")(str(root), None)
    assert table.vocab["segmentation"] == ["background", "rice"]
    assert table.frame["split"].tolist() == ["train"] and table.frame["mask"].iloc[0].endswith("a.png")
