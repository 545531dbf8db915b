"""data_prep/verify.py and data_prep/resize.py, run as scripts on format-exact miniatures."""
import io
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from foodmtl.data.sets.food101 import read_food101
from foodmtl.data.sets.foodx251 import read_foodx251
from foodmtl.data import sets
from foodmtl.data.sets.coco import coco_to_masks
from miniatures import break_header, make_coco, make_food101, make_foodx251, make_nutrition5k, truncate_scan, write_jpeg

REPO = Path(__file__).resolve().parents[1]


def run(script: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    # cwd outside the repo: the scripts must find foodmtl on their own (no install needed).
    return subprocess.run([sys.executable, str(REPO / "data_prep" / script), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def verify(dataset: str, root: Path, *extra) -> subprocess.CompletedProcess:
    return run("verify.py", "--dataset", dataset, "--root", root, "--workers", 1, *extra, cwd=root.parent)


@pytest.fixture
def food101(tmp_path: Path) -> Path:
    return make_food101(tmp_path / "food-101", train_per_class=3, test_per_class=2)


def test_verify_passes_a_clean_food101(food101):
    result = verify("food101", food101)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "train: 9 images, 3 classes, per class min 3" in result.stdout
    assert "test: 6 images, 3 classes, per class min 2" in result.stdout
    assert "OK: no problems found" in result.stdout


def test_verify_reports_missing_and_unreadable_files(food101):
    missing = food101 / "images" / "baklava" / "101000.jpg"
    missing.unlink()
    broken = food101 / "images" / "pizza" / "102001.jpg"
    break_header(broken)
    result = run("verify.py", "--dataset", "food101", "--root", food101, "--workers", 2, cwd=food101.parent)
    assert result.returncode == 1
    assert f"PROBLEM missing file: {missing}" in result.stdout
    assert f"PROBLEM unreadable image: {broken} (" in result.stdout
    assert "FAILED: 2 problem(s)" in result.stdout


def test_truncated_image_is_caught_only_by_decode(food101):
    truncated = food101 / "images" / "apple_pie" / "100004.jpg"
    truncate_scan(truncated)
    assert verify("food101", food101).returncode == 0
    decoded = verify("food101", food101, "--decode")
    assert decoded.returncode == 1
    assert f"PROBLEM unreadable image: {truncated} (image file is truncated" in decoded.stdout


def test_verify_reports_class_mismatches(food101):
    write_jpeg(food101 / "images" / "sushi" / "1.jpg")
    test_list = food101 / "meta" / "test.txt"
    test_list.write_text("".join(line + "\n" for line in test_list.read_text().split() if "pizza" not in line))
    result = verify("food101", food101)
    assert result.returncode == 1
    assert "PROBLEM class mismatch: folder images/sushi is not in meta/classes.txt" in result.stdout
    assert "PROBLEM class mismatch: 1 class(es) have no test images: pizza" in result.stdout


def test_verify_foodx251_and_its_label_errors(tmp_path):
    root = make_foodx251(tmp_path / "foodx")
    clean = verify("foodx251", root)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "val: 6 images, 3 classes" in clean.stdout and "test: 3 images, unlabelled" in clean.stdout
    labels = root / "train_labels.csv"
    labels.write_text(labels.read_text() + "train_00009.jpg,7\n")
    bad = verify("foodx251", root)
    assert bad.returncode == 1
    assert f"{labels}, line 11: 'train_00009.jpg,7'" in bad.stdout


def test_verify_missing_root_says_how_to_get_it(tmp_path):
    result = verify("food101", tmp_path / "food-101")
    assert result.returncode == 1
    assert str(tmp_path / "food-101") in result.stdout and "food-101.tar.gz" in result.stdout


def test_verify_nutrition5k_counts_its_labels_and_prints_the_readers_notes(tmp_path):
    root = make_nutrition5k(tmp_path / "nutrition5k_dataset")
    result = verify("nutrition5k", root)
    assert result.returncode == 0, result.stdout + result.stderr
    # train: dish 1 and the all-zero dish 2 (dish 4 has no image); test: dishes 3 and 5
    labels = "ingredient lists, {0} calories labels, {0} mass labels, {0} fat labels, {0} carb labels, " \
             "{0} protein labels, no dish labels"
    assert f"train: 2 images, 2 {labels.format(1)}" in result.stdout
    assert f"test: 2 images, 2 {labels.format(2)}" in result.stdout
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: ")]
    assert notes == [f"note: {note}" for note in sets.load("nutrition5k", str(root)).notes] and len(notes) == 5
    assert "note: 1 dish(es) have all-zero totals: no mass/calorie/macro labels for them" in notes


GOOD, TWO_POINTS = [[2, 2, 8, 2, 8, 8, 2, 8]], [[1, 1, 3, 3]]  # a square; a polygon pycocotools cannot draw


def coco_split(root: Path) -> Path:
    annotations = [{"id": 1, "image_id": 1, "category_id": 7, "segmentation": GOOD, "iscrowd": 0},
                   {"id": 2, "image_id": 2, "category_id": 7, "segmentation": TWO_POINTS, "iscrowd": 0}]
    return make_coco(root / "train", [{"id": 7, "name": "rice"}], annotations)


def test_every_data_set_module_is_a_verify_choice():
    help_text = run("verify.py", "--help", cwd=REPO).stdout
    assert all(name in help_text for name in sets.names()) and {"coco", "coco_instances"} <= set(sets.names())


def test_verify_coco_instances_counts_the_skipped_shapes(tmp_path):
    split = coco_split(tmp_path / "coco")
    result = verify("coco_instances", split.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "train: 2 images, 2 instance lists, no dish labels" in result.stdout
    assert "note: annotations.json: 1 degenerate shape(s) skipped" in result.stdout


def test_verify_coco_masks_counts_the_shapes_skipped_when_they_were_drawn(tmp_path):
    split = coco_split(tmp_path / "coco")
    with pytest.warns(UserWarning, match="annotation 2: polygon"):
        coco_to_masks(split / "annotations.json", split / "images", split / "masks", "train")
    result = verify("coco", split.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "train: 2 images, 2 masks, no dish labels" in result.stdout
    assert (f"note: {split / 'masks'}: 1 degenerate shape(s) skipped when its masks were drawn (listed in "
            "skipped_shapes.txt)") in result.stdout


def quantization_at(quality: int) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).quantization


def relative(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    return frame.assign(image=[str(Path(p).relative_to(root)) for p in frame["image"]])


def test_resize_food101_keeps_layout_and_aspect(tmp_path):
    src = make_food101(tmp_path / "food-101", size=(80, 60))
    small = write_jpeg(src / "images" / "pizza" / "102000.jpg", size=(20, 16))
    dst = tmp_path / "food-101-32"
    result = run("resize.py", "--dataset", "food101", "--root", src, "--out", dst, "--short-side", 32,
                 "--workers", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resized 14, copied 1" in result.stdout
    for meta in (src / "meta").iterdir():
        assert (dst / "meta" / meta.name).read_bytes() == meta.read_bytes()
    assert (dst / "images" / "pizza" / "102000.jpg").read_bytes() == small.read_bytes()  # never upscaled
    resized = dst / "images" / "apple_pie" / "100000.jpg"
    with Image.open(resized) as image:
        assert (image.format, image.size) == ("JPEG", (43, 32))
        assert image.quantization == quantization_at(90)
    assert relative(read_food101(dst).frame, dst).equals(relative(read_food101(src).frame, src))
    assert run("verify.py", "--dataset", "food101", "--root", dst, "--decode", cwd=tmp_path).returncode == 0


def test_resize_foodx251_includes_test_set_and_label_files(tmp_path):
    src = make_foodx251(tmp_path / "foodx", size=(60, 90), release="github")
    dst = tmp_path / "foodx-32"
    result = run("resize.py", "--dataset", "foodx251", "--root", src, "--out", dst, "--short-side", 32,
                 "--workers", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("class_list.txt", "train_info.csv", "val_info.csv", "test_info.csv"):
        assert (dst / name).read_bytes() == (src / name).read_bytes()
    with Image.open(dst / "test_set" / "test_00000.jpg") as image:
        assert image.size == (32, 48)
    assert relative(read_foodx251(dst).frame, dst).equals(relative(read_foodx251(src).frame, src))


def test_resize_skips_and_reports_unreadable_images(tmp_path):
    src = make_food101(tmp_path / "food-101", size=(80, 60))
    broken = src / "images" / "baklava" / "101002.jpg"
    break_header(broken)
    dst = tmp_path / "out"
    result = run("resize.py", "--dataset", "food101", "--root", src, "--out", dst, "--short-side", 32,
                 "--workers", 2, cwd=tmp_path)
    assert result.returncode == 1
    assert f"SKIPPED unreadable image: {broken}" in result.stdout
    written = sorted(p.relative_to(dst / "images") for p in (dst / "images").rglob("*"))
    assert Path("baklava/101002.jpg") not in written
    assert len([p for p in written if p.suffix == ".jpg"]) == 14
    assert not list(dst.rglob("*.part"))


def test_resize_refuses_to_overwrite_the_originals(food101):
    result = run("resize.py", "--dataset", "food101", "--root", food101, "--out", food101, cwd=food101.parent)
    assert result.returncode == 1
    assert "--out must differ from --root" in result.stdout
