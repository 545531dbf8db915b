"""FoodSeg103 reader and COCO -> semantic mask conversion, on format-exact miniatures."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from foodmtl.data.sets.coco import coco_to_masks, read_coco_masks
from foodmtl.data.formats.coco_shapes import compressed_runs
from foodmtl.data.dataset import FoodDataset
from foodmtl.errors import SampleError
from foodmtl.data.sets.foodseg103 import read_category_ids, read_foodseg103
from foodmtl.data.masks import mask_dtype, mask_ignore_value, read_mask, write_mask
from foodmtl.data.transforms import eval_transform
from foodmtl.tasks import TaskSpec
from miniatures import make_coco

REPO = Path(__file__).resolve().parents[1]
FOODSEG_CLASSES = ["background", "candy", "egg tart", "french fries"]


def write_image(path: Path, size=(20, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8)).save(path)
    return path


def save_png(path: Path, mask: np.ndarray) -> Path:
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
                save_png(root / "Images" / "ann_dir" / split / f"{stem}.png", np.full((16, 20), k % 4))
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


def expected_mask(data: dict, image_id: int, order: list[int], crowd: list[int], class_of: dict | None = None,
                  dtype=np.uint8, segmentations: dict | None = None) -> np.ndarray:
    """Paint with pycocotools directly in the given annotation order, then crowds as ignore.
    ``segmentations``: annotation id -> the segmentation to paint instead of the file's."""
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    class_of = class_of or {3: 1, 7: 2, 12: 3}
    info = coco.imgs[image_id]
    out = np.zeros((info["height"], info["width"]), dtype)
    for ann_id in order + crowd:
        ann = dict(coco.anns[ann_id])
        if ann_id in (segmentations or {}):
            ann["segmentation"] = segmentations[ann_id]
        out[coco.annToMask(ann) > 0] = np.iinfo(dtype).max if ann_id in crowd else class_of[ann["category_id"]]
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
    assert (masks["a"] == 1).sum() == 16 and (masks["b"] == 255).sum() == 36  # small item and crowd visible
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
    assert done.stdout == (f"wrote 3 masks (3 categories + background, 8-bit) to {out}; "
                           "skipped 0 shape(s) that cannot be drawn\n")
    assert done.stderr.startswith("warning: COCO: 1 of 4 images")  # gone.jpg
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png", "c.png"]
    cmd[3] = str(tmp_path / "missing.json")
    failed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2 and failed.stderr.startswith("error: COCO annotation file not found")
    assert "missing.json" in failed.stderr and "Traceback" not in failed.stderr


def test_coco_dataset_reads_converted_splits_and_names_the_conversion_command(tmp_path):
    from foodmtl.data import sets

    root = tmp_path / "coco"
    images = root / "train" / "images"
    images.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.jpg")
    with pytest.raises(FileNotFoundError, match="(?s)train/masks.*coco_to_masks.py"):
        sets.load("coco", str(root))
    (root / "train" / "masks").mkdir()
    Image.fromarray(np.ones((8, 8), np.uint8)).save(root / "train" / "masks" / "a.png")
    (root / "train" / "masks" / "category_id.txt").write_text("0\tbackground\n1\trice\n")
    table = sets.load("coco", str(root))
    assert table.vocab["segmentation"] == ["background", "rice"]
    assert table.frame["split"].tolist() == ["train"] and table.frame["mask"].iloc[0].endswith("a.png")


# --- mask files: 8-bit and 16-bit -------------------------------------------------------------

@pytest.mark.parametrize("num_classes, dtype, mode", [
    (2, np.uint8, "L"), (255, np.uint8, "L"), (256, np.uint16, "I;16"), (499, np.uint16, "I;16"),
    (65535, np.uint16, "I;16")])
def test_masks_round_trip_at_the_depth_their_class_count_needs(tmp_path, num_classes, dtype, mode):
    assert mask_dtype(num_classes) == dtype
    ignore = mask_ignore_value(dtype)
    assert ignore == np.iinfo(dtype).max and ignore >= num_classes  # never a class id
    ids = np.random.default_rng(num_classes).integers(0, num_classes, (16, 20)).astype(dtype)
    ids[0, :3] = [0, num_classes - 1, ignore]
    path = tmp_path / "mask.png"
    write_mask(path, ids)
    with Image.open(path) as img:
        assert img.mode == mode
    back = read_mask(str(path))
    assert back.dtype == dtype and mask_ignore_value(back) == ignore
    np.testing.assert_array_equal(back, ids)
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), ids)  # an independent PNG decoder


def test_8bit_ignore_is_the_training_ignore_index():
    assert mask_ignore_value(np.uint8) == 255


def test_more_classes_than_16_bits_hold_are_refused():
    with pytest.raises(ValueError, match="65536 classes"):
        mask_dtype(65536)


@pytest.mark.parametrize("mask, error", [(np.zeros((4, 4), np.int64), TypeError),
                                         (np.zeros((4, 4, 3), np.uint8), ValueError)])
def test_write_mask_refuses_what_it_would_change(tmp_path, mask, error):
    with pytest.raises(error):
        write_mask(tmp_path / "m.png", mask)
    assert not (tmp_path / "m.png").exists()


def test_32bit_integer_masks_come_back_as_uint16(tmp_path):
    """Older Pillow opens 16-bit PNGs as mode I (int32); a mode-I TIFF reads the same way here."""
    ids = np.array([[0, 300], [65535, 7]], np.int32)
    Image.fromarray(ids, mode="I").save(tmp_path / "m.tif")
    back = read_mask(str(tmp_path / "m.tif"))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, ids)
    Image.fromarray(np.array([[70000]], np.int32), mode="I").save(tmp_path / "big.tif")
    with pytest.raises(SampleError, match="big.tif"):
        read_mask(str(tmp_path / "big.tif"))


# --- COCO with more categories than 8 bits hold (AIcrowd: 498) ---------------------------------

AICROWD_CATEGORIES = 498


def box(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


@pytest.fixture
def aicrowd_like(tmp_path):
    """498 categories with non-contiguous ids listed in reverse; classes above 255 and class 255 itself in use."""
    categories = [{"id": 100000 + 3 * k, "name": f"food {k}"} for k in reversed(range(AICROWD_CATEGORIES))]
    top, late, at_255 = 100000 + 3 * 497, 100000 + 3 * 300, 100000 + 3 * 254  # classes 498, 301, 255
    annotations = [
        {"id": 1, "image_id": 1, "category_id": late, "segmentation": box(4, 4, 8, 8), "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": top, "segmentation": box(1, 1, 15, 12), "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 100000, "segmentation": box(10, 2, 14, 6), "iscrowd": 1},
        {"id": 4, "image_id": 2, "category_id": at_255, "segmentation": compressed_rle(rect(16, 20, 0, 8, 0, 10)),
         "iscrowd": 0},
    ]
    root = make_coco(tmp_path / "train", categories, annotations)
    return root, json.loads((root / "annotations.json").read_text())


def test_more_than_254_categories_convert_to_16bit_masks(aicrowd_like, tmp_path):
    root, data = aicrowd_like
    out = tmp_path / "masks"
    table = coco_to_masks(root / "annotations.json", root / "images", out, "train")
    classes = table.vocab["segmentation"]
    assert len(classes) == AICROWD_CATEGORIES + 1 and classes[:3] == ["background", "food 0", "food 1"]
    class_of = {100000 + 3 * k: k + 1 for k in range(AICROWD_CATEGORIES)}
    masks = [read_mask(p) for p in table.frame["mask"]]
    assert all(m.dtype == np.uint16 for m in masks)
    np.testing.assert_array_equal(masks[0], expected_mask(data, 1, [2, 1], [3], class_of, np.uint16))
    np.testing.assert_array_equal(masks[1], expected_mask(data, 2, [4], [], class_of, np.uint16))
    assert set(np.unique(masks[0])) == {0, 301, 498, 65535} and set(np.unique(masks[1])) == {0, 255}
    assert read_category_ids(out / "category_id.txt") == classes
    reread = read_coco_masks(out, root / "images", "train")
    assert reread.vocab == table.vocab and reread.frame.equals(table.frame)


def test_script_says_16bit(aicrowd_like, tmp_path):
    root, _ = aicrowd_like
    cmd = [sys.executable, "data_prep/coco_to_masks.py", "--ann", str(root / "annotations.json"),
           "--images", str(root / "images"), "--out", str(tmp_path / "m"), "--split", "train"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "(498 categories + background, 16-bit)" in done.stdout


# --- COCO shapes pycocotools cannot draw ---------------------------------------------------------

def short_rle() -> dict:
    """A valid compressed string of an 8x20 mask, claimed to be 16x20: its runs cover half the image."""
    return {"size": [16, 20], "counts": compressed_rle(rect(8, 20, 0, 4, 0, 5))["counts"]}


BAD_SHAPES = {  # annotation id -> (segmentation, words of the reason)
    10: ([[1, 1, 5, 5]], "4 numbers"),  # pycocotools: TypeError: Argument 'bb' has incorrect type
    11: ([[1, 1]], "2 numbers"),  # pycocotools: Exception: input type is not supported
    12: ([[1, 1, 9, 1, 9, 9, 4]], "7 numbers"),
    13: ([], "no segmentation"),
    14: ([[]], "0 numbers"),
    16: ([[1, 1, 9, 1, float("nan"), 9]], "not a finite number"),
    17: (None, "no segmentation"),  # bbox only: the key is absent
    18: ({"size": [16, 20], "counts": [5, 3]}, "covering 8 pixels, not 16x20 = 320"),
    19: ({"size": [8, 8], "counts": [64]}, "size [8, 8]"),
    20: ({"size": [16, 20], "counts": "zzzz"}, "neither run lengths nor a COCO-compressed string"),
    21: (short_rle(), "covering 160 pixels"),
    22: ([[1, 1, 9, 1, 1e7, 9]], "far outside the 20x16 image"),
    24: ([["a", "b", "c", "d", "e", "f"]], "not a list of numbers"),
}


@pytest.fixture
def degenerate(tmp_path):
    annotations = [{"id": i, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [1, 1, 4, 4],
                    **({} if seg is None else {"segmentation": seg})} for i, (seg, _) in BAD_SHAPES.items()]
    annotations += [
        {"id": 15, "image_id": 1, "category_id": 2, "segmentation": box(2, 2, 6, 6) + [[1, 1]], "iscrowd": 0},
        {"id": 23, "image_id": 2, "category_id": 1, "segmentation": box(10, 2, 18, 12), "iscrowd": 0},
    ]
    root = make_coco(tmp_path / "train", [{"id": 1, "name": "rice"}, {"id": 2, "name": "egg"}], annotations)
    return root, json.loads((root / "annotations.json").read_text())


def test_shapes_pycocotools_cannot_draw_are_skipped_and_named(degenerate, tmp_path):
    root, data = degenerate
    with pytest.warns(UserWarning) as caught:
        table = coco_to_masks(root / "annotations.json", root / "images", tmp_path / "m", "train")
    prefix = "image 1 (000001.jpg), annotation "
    reasons = {int(note[len(prefix):].split(":")[0]): note for note in table.notes}
    assert all(note.startswith(prefix) and note.endswith("; skipped") for note in table.notes)
    assert sorted(reasons) == sorted([*BAD_SHAPES, 15])
    for ann_id, (_, words) in BAD_SHAPES.items():
        assert words in reasons[ann_id], reasons[ann_id]
    assert "polygon part 2 of 2: 2 numbers" in reasons[15]
    ours = [str(w.message) for w in caught if w.category is UserWarning]
    assert ours == [f"COCO: {note}" for note in table.notes]
    masks = [read_mask(p) for p in table.frame["mask"]]
    # What remains is drawn exactly as pycocotools draws it: annotation 15's good part, annotation 23.
    np.testing.assert_array_equal(masks[0], expected_mask(data, 1, [15], [], {1: 1, 2: 2},
                                                          segmentations={15: box(2, 2, 6, 6)}))
    np.testing.assert_array_equal(masks[1], expected_mask(data, 2, [23], [], {1: 1, 2: 2}))
    assert (masks[0] == 2).sum() == 16  # the 4x4 box, as in the first COCO test


def test_script_lists_and_counts_skipped_shapes(degenerate, tmp_path):
    root, _ = degenerate
    cmd = [sys.executable, "data_prep/coco_to_masks.py", "--ann", str(root / "annotations.json"),
           "--images", str(root / "images"), "--out", str(tmp_path / "m"), "--split", "train"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "warning: COCO: image 1 (000001.jpg), annotation 10: polygon part 1 of 1: 4 numbers" in done.stderr
    assert len(done.stderr.splitlines()) == len(BAD_SHAPES) + 1
    assert done.stdout.endswith(f"skipped {len(BAD_SHAPES) + 1} shape(s) that cannot be drawn\n")


def test_compressed_runs_read_what_pycocotools_wrote():
    rng = np.random.default_rng(0)
    for trial in range(200):
        h, w = rng.integers(1, 30, 2)
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        mask[:] = {0: 0, 1: 1}.get(trial % 7, mask)  # some all-background, some all-foreground
        assert compressed_runs(compressed_rle(mask)["counts"]) == uncompressed_rle(mask)["counts"]
    assert compressed_runs("0") == [0] and compressed_runs("1^") is None  # "^" (78 - 48 = 30) needs a next character
