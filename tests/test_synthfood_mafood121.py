"""SynthFood in MAFood-121's layout (read unchanged by the MAFood-121 reader, reproducible, food groups
varying within a dish), and MAFood-121 data through the real ``foodmtl train``."""
import json
import os
import subprocess
import sys
from pathlib import Path

from foodmtl.data.sets.mafood121 import read_mafood121
from foodmtl.synthfood.mafood121 import generate_mafood121
from miniatures_mafood121 import make_mafood121

ROOT = Path(__file__).resolve().parents[1]


def foodmtl(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run([str(Path(sys.executable).with_name("foodmtl")), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_synthfood_in_mafood121_layout_is_read_unchanged_and_reproducible(tmp_path):
    out = generate_mafood121(tmp_path / "s", cuisines=2, dishes_per_cuisine=2, per_dish=10, size=32)
    table = read_mafood121(out / "MAFood121")
    assert len(table) == 40 and table.frame["split"].value_counts().to_dict() == {"train": 24, "val": 8, "test": 8}
    assert len(table.vocab["dish"]) == 4 and len(table.vocab["cuisine"]) == 2
    per_dish = table.frame.groupby("dish")["foodgroups"].nunique()
    assert (per_dish > 1).sum() >= 3  # combinations vary within most dishes
    cuisines = table.frame.groupby("dish")["cuisine"].nunique()
    assert (cuisines == 1).all()  # a dish belongs to one cuisine
    names = table.frame["image"].map(lambda p: Path(p).stem)
    assert names.str.fullmatch(r"\d{6}").any() and names.str.fullmatch(r"\d+_\d").any()  # two file-name styles
    again = generate_mafood121(tmp_path / "t", cuisines=2, dishes_per_cuisine=2, per_dish=10, size=32)
    for file in sorted((out / "MAFood121").rglob("*.*")):
        assert file.read_bytes() == (again / file.relative_to(out)).read_bytes()
    assert json.loads((out / "synthfood.json").read_text())["layout"] == "mafood121"


def test_bad_data_through_foodmtl_train_is_one_error_line_and_exit_2(tmp_path):
    root = make_mafood121(tmp_path / "m")
    (root / "annotations" / "val_lbls_ff.txt").write_text("0\n9")
    result = foodmtl("train", "experiments/mafood121/synth.yaml", f"data.root={root}",
                     f"output_dir={tmp_path / 'runs'}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0] == (f"error: {root / 'annotations' / 'val_lbls_ff.txt'}, line 2: "
                                             "'9' is not an index 0..4 into foodgroups.txt")
    assert "Traceback" not in result.stderr


def test_the_generator_script_refuses_an_existing_folder_in_one_error_line(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    proc = subprocess.run([sys.executable, str(ROOT / "data_prep" / "make_synthfood_mafood121.py"),
                           "--out", str(tmp_path / "taken")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "already exists" in proc.stderr and (tmp_path / "taken" / "keep.txt").read_text() == "mine"
