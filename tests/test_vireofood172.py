"""VireoFood-172 reader on a format-exact miniature of the release (quirks included)."""
import subprocess
import sys
from pathlib import Path

import pytest

from foodmtl.data import sets
from foodmtl.errors import DataError
from foodmtl.data.sets.vireofood172 import read_vireofood172
from miniatures import write_jpeg

REPO = Path(__file__).resolve().parents[1]
DISHES = ["Braised pork", "Mapo tofu", "Fried rice"]             # FoodList.txt: line i names folder i
INGREDIENTS = ["Pork", "Tofu", "Rice", "Egg", "Scallion"]       # IngredientList.txt: value j of a row
TR = ["/1/1_1.jpg", "/1/1_2.jpg", "/2/2_1.jpg", "/3/3_1.jpg"]   # split lines keep their leading slash
VAL = ["/2/2_2.jpg", "/1/1_4.jpg", "/3/3_3.jpg"]
TE = ["/3/3_2.jpg", "/1/1_3.jpg", "/2/2_3.jpg"]                 # 1_3: no IngreLabel.txt row
MARKS = {
    "/1/1_1.jpg": "1 -1 -1 -1 1",
    "/1/1_2.jpg": "1 -1 -1 1 -1",
    "/2/2_1.jpg": "1 1 -1 -1 1",
    "/3/3_1.jpg": "1 -1 1 1 1",
    "/2/2_2.jpg": "-1 1 -1 -1 -1",
    "/1/1_4.jpg": "1 -1 1 -1 -1",
    "/3/3_3.jpg": "-1 -1 1 1 -1",
    "/2/2_3.jpg": "-1 1 -1 -1 1",
    "/3/3_2.jpg": "-1 -1 -1 -1 -1",                               # nothing marked
    "/2/2_9.jpg": "-1 1 -1 -1 1",                                # in no split list
}


def lines(rows: list[str], end: str = "\n") -> str:
    return "".join(f"{row}{end}" for row in rows)


def build(root: Path, end: str = "\n", **files: list[str]) -> Path:
    """The release under ``root``; ``files`` replaces a list file's lines (name without .txt)."""
    labels = root / "SplitAndIngreLabel"
    labels.mkdir(parents=True)
    content = {"FoodList": DISHES, "IngredientList": INGREDIENTS, "TR": TR, "VAL": VAL, "TE": TE,
               "IngreLabel": [f"{path} {values}" for path, values in MARKS.items()]} | files
    for name, rows in content.items():
        (labels / f"{name}.txt").write_bytes(lines(rows, end).encode())
    for seed, path in enumerate(TR + VAL + TE):
        write_jpeg(root / "ready_chinese_food" / path.lstrip("/"), (20, 16), seed=seed)
    return root


def by_name(table) -> dict:
    return table.frame.set_index(table.frame["image"].map(lambda p: Path(p).name)).to_dict("index")


def test_rows_labels_splits_and_reported_quirks(tmp_path):
    root = build(tmp_path / "VireoFood172")
    table = read_vireofood172(root)
    rows = by_name(table)
    assert sorted(rows) == sorted(Path(p).name for p in TR + VAL + TE)
    assert rows["1_1.jpg"]["image"] == str(root / "ready_chinese_food" / "1" / "1_1.jpg")
    assert {name: row["split"] for name, row in rows.items()} == {
        "1_1.jpg": "train", "1_2.jpg": "train", "2_1.jpg": "train", "3_1.jpg": "train",
        "2_2.jpg": "val", "1_4.jpg": "val", "3_3.jpg": "val", "3_2.jpg": "test", "1_3.jpg": "test",
        "2_3.jpg": "test"}
    assert {name: row["dish"] for name, row in rows.items()} == {
        **dict.fromkeys(["1_1.jpg", "1_2.jpg", "1_3.jpg", "1_4.jpg"], "Braised pork"),
        **dict.fromkeys(["2_1.jpg", "2_2.jpg", "2_3.jpg"], "Mapo tofu"),
        **dict.fromkeys(["3_1.jpg", "3_2.jpg", "3_3.jpg"], "Fried rice")}
    assert rows["1_1.jpg"]["ingredients"] == ("Pork", "Scallion")
    assert rows["3_1.jpg"]["ingredients"] == ("Pork", "Rice", "Egg", "Scallion")
    assert rows["2_2.jpg"]["ingredients"] == ("Tofu",)
    assert rows["3_2.jpg"]["ingredients"] == ()                   # labelled: no ingredient
    assert rows["1_3.jpg"]["ingredients"] is None                 # no row: unlabelled, dish kept
    assert set(table.frame["source"]) == {"vireofood172"}
    assert table.vocab == {"dish": DISHES, "ingredients": INGREDIENTS}
    notes = " | ".join(table.notes)
    for expected in ("1 listed image(s) have no IngreLabel.txt row", "1 image(s) of IngreLabel.txt are in no split",
                     "1 image(s) have no ingredient marked"):
        assert expected in notes, notes


def test_crlf_lines_and_a_repeated_ingredient_name(tmp_path):
    plain = read_vireofood172(build(tmp_path / "lf"))
    crlf = read_vireofood172(build(tmp_path / "crlf", end="\r\n"))
    assert crlf.frame.drop(columns="image").equals(plain.frame.drop(columns="image"))
    merged = read_vireofood172(build(tmp_path / "dup", IngredientList=["Pork", "Tofu", "Rice", "Egg", "Pork"]))
    assert merged.vocab["ingredients"] == ["Pork", "Tofu", "Rice", "Egg"]
    assert by_name(merged)["1_1.jpg"]["ingredients"] == ("Pork",)  # columns 1 and 5 are one class
    assert "names 1 ingredient(s) twice (first: 'Pork')" in " | ".join(merged.notes)


ROWS = [f"{path} {values}" for path, values in MARKS.items()]


@pytest.mark.parametrize("name, rows, line, what", [
    ("IngreLabel", ROWS[:2] + ["/2/2_1.jpg 1 1 -1 -1"] + ROWS[3:], 3, "expected an image path and 5 values"),
    ("IngreLabel", ROWS[:3] + ["/3/3_1.jpg 1 -1 0 1 1"] + ROWS[4:], 4, "value '0' is not -1 or 1"),
    ("IngreLabel", ROWS[:3] + ["/3/3_1.jpg 1 -1 11 1 1"] + ROWS[4:], 4, "value '11' is not -1 or 1"),
    ("IngreLabel", ROWS + ["/1/1_1.jpg -1 -1 -1 -1 -1"], 11, "'1/1_1.jpg' has a second row \\(first at line 1\\)"),
    ("TR", TR + ["/4/4_1.jpg"], 5, "expected '/<dish folder 1..3>/<name>.jpg', got '/4/4_1.jpg'"),
    ("TR", TR + ["/x/4_1.jpg"], 5, "expected '/<dish folder 1..3>/<name>.jpg'"),
    ("TR", TR + ["/1/1_1.jpg"], 5, "'/1/1_1.jpg' is listed twice \\(also line 1\\)"),
    ("TE", TE + ["/1/1_2.jpg"], 4, "'/1/1_2.jpg' is also listed in TR.txt, line 2"),
    ("FoodList", ["Braised pork", "", "Fried rice"], 2, "blank line"),
    ("FoodList", ["Braised pork", "Mapo tofu", "Braised pork"], 3, "dish 'Braised pork' is named twice"),
])
def test_bad_lines_name_file_and_line(tmp_path, name, rows, line, what):
    root = build(tmp_path / "v", **{name: rows})
    with pytest.raises(DataError, match=what) as caught:
        read_vireofood172(root)
    assert str(caught.value).startswith(f"{root / 'SplitAndIngreLabel' / name}.txt, line {line}: ")


def test_missing_release_names_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)VireoFood-172 not found.*vireo.cs.cityu.edu.hk/VireoFood172"):
        read_vireofood172(tmp_path / "nowhere")


def test_a_taxonomy_adds_category_and_keeps_the_images_ingredients(tmp_path):
    csv = tmp_path / "taxonomy.csv"
    csv.write_text("dish,category,cuisine,ingredients\nBraised pork,meat,Chinese,pork;sugar\n"
                   "Mapo tofu,tofu,Sichuan,tofu\nFried rice,rice,Chinese,rice\n")
    table = sets.load("vireofood172", str(build(tmp_path / "v")), sets.LoadOptions(taxonomy=str(csv)))
    rows = by_name(table)
    assert rows["1_1.jpg"]["category"] == "meat" and rows["2_2.jpg"]["cuisine"] == "Sichuan"
    assert rows["1_1.jpg"]["ingredients"] == ("Pork", "Scallion") and rows["1_3.jpg"]["ingredients"] is None
    assert table.vocab["ingredients"] == INGREDIENTS and table.vocab["category"] == ["meat", "rice", "tofu"]


def test_verify_counts_the_release_and_prints_its_notes(tmp_path):
    root = build(tmp_path / "v")
    result = subprocess.run([sys.executable, str(REPO / "data_prep" / "verify.py"), "--dataset", "vireofood172",
                             "--root", str(root), "--workers", "1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "train: 4 images, 3 classes" in result.stdout and "val: 3 images, 3 classes" in result.stdout
    assert "note: 1 image(s) of IngreLabel.txt are in no split list" in result.stdout
    (root / "ready_chinese_food" / "2" / "2_2.jpg").unlink()
    missing = subprocess.run([sys.executable, str(REPO / "data_prep" / "verify.py"), "--dataset", "vireofood172",
                              "--root", str(root), "--workers", "1"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "PROBLEM missing file" in missing.stdout and "2_2.jpg" in missing.stdout
