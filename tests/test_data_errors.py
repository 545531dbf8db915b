"""Bad data is one ``<file>, line N: <what>`` DataError from every reader, and one ``error:`` line
with exit status 2 from ``foodmtl train`` (no traceback, no run folder), the same text that
``data_prep/verify.py`` prints."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from foodmtl.data.sets.coco import coco_to_masks
from foodmtl.errors import DataError
from foodmtl.data.sets.food101 import read_food101
from foodmtl.data.sets.foodseg103 import read_foodseg103
from foodmtl.data.sets.foodx251 import read_foodx251
from miniatures import make_coco, make_food101, make_foodx251

REPO = Path(__file__).resolve().parents[1]
FOODMTL = Path(sys.executable).with_name("foodmtl")


def append(path: Path, line: str) -> int:
    """Add ``line`` at the end of ``path``; its line number."""
    path.write_text(path.read_text() + line + "\n")
    return len(path.read_text().splitlines())


def bad_foodx251(tmp_path: Path) -> tuple[Path, Path, int]:
    """The issue's case: a label one past the last class id (251 in the real set)."""
    root = make_foodx251(tmp_path / "foodx251")
    labels = root / "train_labels.csv"
    return root, labels, append(labels, "train_000003.jpg,3")


def bad_food101(tmp_path: Path) -> tuple[Path, Path, int]:
    """The issue's other case: a train.txt line whose class is not in classes.txt."""
    root = make_food101(tmp_path / "food-101")
    listing = root / "meta" / "train.txt"
    return root, listing, append(listing, "pizzza/100001")


def data_error(read, root: Path) -> DataError:
    with pytest.raises(DataError) as error:
        read(root)
    return error.value


@pytest.mark.parametrize("make, read", [(bad_foodx251, read_foodx251), (bad_food101, read_food101)])
def test_issue_cases_name_file_and_line(tmp_path, make, read):
    root, path, line = make(tmp_path)
    error = data_error(read, root)
    assert (error.path, error.line) == (str(path), line)
    assert str(error).startswith(f"{path}, line {line}: ")


def test_foodseg103_category_list_error_is_a_data_error(tmp_path):
    root = tmp_path / "FoodSeg103"
    root.mkdir()
    (root / "category_id.txt").write_text("0\tbackground\n1\tcandy\n3\tegg tart\n")
    error = data_error(read_foodseg103, root)
    assert str(error) == f"{root / 'category_id.txt'}, line 3: expected '2 <name>', got '3\tegg tart'"


# --- COCO annotation files ----------------------------------------------------------------------

def coco_with(tmp_path: Path, change) -> tuple[Path, Path]:
    """A good COCO miniature, its json passed through ``change(data)``."""
    root = make_coco(tmp_path / "train", [{"id": 5, "name": "rice"}],
                     [{"id": 1, "image_id": 1, "category_id": 5, "segmentation": [[1, 1, 8, 1, 8, 8]]}])
    ann = root / "annotations.json"
    data = json.loads(ann.read_text())
    change(data)
    ann.write_text(json.dumps(data))
    return root, ann


def second_image_id(data):
    data["images"][1]["id"] = 1


def unknown_category(data):
    data["annotations"][0]["category_id"] = 6


def no_height(data):
    del data["images"][1]["height"]


def text_id(data):
    data["annotations"][0]["image_id"] = "1"


def zero_width(data):
    data["images"][0]["width"] = 0


def blank_name(data):
    data["categories"][0]["name"] = " \t"


def no_categories(data):
    del data["categories"]


def too_many_categories(data):
    data["categories"] = [{"id": i, "name": f"food {i}"} for i in range(1, 65536)]


@pytest.mark.parametrize("change, what", [
    (second_image_id, "images[1]: id 1 is used twice in images"),
    (unknown_category, "annotation 1 has category_id 6, which is not in the categories"),
    (no_height, "images[1] has no height"),
    (text_id, "annotations[0] has image_id '1'; expected an integer"),
    (zero_width, "image 1 has height 16, width 0; expected positive integers"),
    (blank_name, "category 5 has an empty name"),
    (no_categories, "not COCO instance annotations: no categories list"),
    (too_many_categories, "65535 categories: 65536 classes do not fit a 16-bit mask (at most 65535)"),
])
def test_coco_file_errors_are_data_errors_and_write_nothing(tmp_path, change, what):
    root, ann = coco_with(tmp_path, change)
    out = tmp_path / "masks"
    with pytest.raises(DataError) as error:
        coco_to_masks(ann, root / "images", out, "train")
    assert str(error.value) == f"{ann}: {what}"
    assert not out.exists()


def test_malformed_coco_json_names_line_and_column(tmp_path):
    root, ann = coco_with(tmp_path, lambda data: None)
    ann.write_text(json.dumps(json.loads(ann.read_text()), indent=1).replace('"rice"', '"rice",', 1))
    line = next(n for n, text in enumerate(ann.read_text().splitlines(), start=1) if '"rice",' in text)
    with pytest.raises(DataError) as error:
        coco_to_masks(ann, root / "images", tmp_path / "masks", "train")
    assert (error.value.path, error.value.line) == (str(ann), line + 1)
    assert error.value.what.startswith("not valid JSON: Expecting property name enclosed in double quotes")


# --- through the command line -------------------------------------------------------------------

def foodmtl(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(FOODMTL), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def verify(dataset: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "data_prep" / "verify.py"), "--dataset", dataset,
                           "--root", str(root), "--workers", "1"], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("dataset, make, read", [("foodx251", bad_foodx251, read_foodx251),
                                                 ("food101", bad_food101, read_food101)])
def test_train_and_verify_print_the_same_one_line_error(tmp_path, dataset, make, read):
    root, _, _ = make(tmp_path)
    text = str(data_error(read, root))
    runs = tmp_path / "runs"
    result = foodmtl("train", f"experiments/{dataset}/base.yaml", f"data.root={root}", "model.pretrained=false",
                     "model.backbone=resnet18", "data.num_workers=0", "tracking.wandb=disabled", f"output_dir={runs}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == f"error: {text}"
    assert "Traceback" not in result.stderr
    assert not runs.exists()
    checked = verify(dataset, root)
    assert checked.returncode == 1
    assert f"PROBLEM cannot read {dataset}: {text}\n" in checked.stdout
