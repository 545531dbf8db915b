"""Food2K / Food1K readers on format-exact miniatures of their releases, the list parser against a
plain-Python reference, the builder registration, verify.py and the taxonomy coverage script."""
import importlib.util
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from foodmtl.data import sets
from foodmtl.errors import DataError
from foodmtl.data.sets.food2k import read_food1k, read_food2k
from foodmtl.data.formats.label_list import read_label_list
from foodmtl.data.table import COLUMNS
from miniatures import break_header, write_jpeg

REPO = Path(__file__).resolve().parents[1]
# ids 0..2 of the paper's supplementary class table
NAMES = ("Grilled beef tongue", "Flavored snail meat", "Napoleon cake")
SPLIT_SIZES = {"train": 3, "val": 1, "test": 2}


def make_food2k(root: Path, lists_in: str = "Food2k_label", names: tuple[str, ...] = NAMES) -> Path:
    """``Food2k_complete/<id>/<n>.jpg`` + ``food2k_label2name_en.txt``; the split lists either
    in ``Food2k_label/`` beside it (Food2k_label.tar.gz) or inside ``Food2k_complete/``."""
    images = root / "Food2k_complete"
    lists: dict[str, list[str]] = {split: [] for split in SPLIT_SIZES}
    for c in range(len(names)):
        n = 0
        for split, size in SPLIT_SIZES.items():
            for _ in range(size):
                write_jpeg(images / str(c) / f"{100 * c + n}.jpg", seed=100 * c + n)
                lists[split].append(f"{c}/{100 * c + n}.jpg {c}\n")
                n += 1
    (images / "food2k_label2name_en.txt").write_text("".join(f"{i}--{name}\n" for i, name in enumerate(names)))
    folder = root / lists_in
    folder.mkdir(parents=True, exist_ok=True)
    for split, lines in lists.items():
        (folder / f"{split}_finetune.txt").write_text("".join(lines))
    return root


def make_food1k(root: Path, classes: tuple[int, ...] = (0, 7, 999), per_split: tuple[int, int] = (3, 2),
                label_dir: str = "label") -> Path:
    """``Train/<id>/``, ``Val/<id>/`` and ``label/{train,val}_finetune.txt`` (``<dir>/<file> <label>``)."""
    (root / label_dir).mkdir(parents=True)
    for split, folder, per_class in zip(("train", "val"), ("Train", "Val"), per_split):
        lines = []
        for c in classes:
            for k in range(per_class):
                name = f"{split}_{c}_{k}.jpg"
                write_jpeg(root / folder / str(c) / name, seed=c + k)
                lines.append(f"{c}/{name} {c}\n")
        (root / label_dir / f"{split}_finetune.txt").write_text("".join(lines))
    return root


def listed(path: Path) -> list[tuple[str, int]]:
    return [(line.split()[0], int(line.split()[1])) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("lists_in, given", [("Food2k_label", "."), ("Food2k_complete", "."),
                                             ("Food2k_label", "Food2k_complete")])
def test_food2k_rows_labels_and_class_order(tmp_path, lists_in, given):
    root = make_food2k(tmp_path / "food2k", lists_in)
    table = read_food2k(root / given)
    frame, images = table.frame, root / "Food2k_complete"
    assert list(frame.columns) == list(COLUMNS)
    assert table.vocab == {"dish": list(NAMES)}
    assert frame["split"].value_counts().to_dict() == {s: n * len(NAMES) for s, n in SPLIT_SIZES.items()}
    assert set(frame["source"]) == {"food2k"}
    for split in SPLIT_SIZES:
        expected = listed(root / lists_in / f"{split}_finetune.txt")
        rows = frame[frame["split"] == split]
        assert rows["image"].tolist() == [str(images / key) for key, _ in expected]
        assert rows["dish"].tolist() == [NAMES[label] for _, label in expected]
    assert all(Path(p).is_file() for p in frame["image"])


def test_food2k_accepts_the_unverified_variants(tmp_path):
    """Leading '/', tabs, CRLF, a BOM, no extension, '\\' separators, zero-padded '<id> <name>'."""
    plain = read_food2k(make_food2k(tmp_path / "plain")).frame
    root = make_food2k(tmp_path / "variants")
    lists = root / "Food2k_label"
    for i, split in enumerate(SPLIT_SIZES):
        lines = (lists / f"{split}_finetune.txt").read_text().splitlines()
        variant = [("/" if i == 0 else "") + line.replace(" ", "\t").replace(".jpg", "" if i == 1 else ".jpg")
                   for line in lines]
        if i == 2:
            variant = [v.replace("/", "\\") for v in variant]
        (lists / f"{split}_finetune.txt").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(variant).encode() + b"\r\n\r\n")
    names = root / "Food2k_complete" / "food2k_label2name_en.txt"
    names.write_text("".join(f"{i:04d} {name}\n" for i, name in enumerate(NAMES)))
    table = read_food2k(root)
    assert table.vocab == {"dish": list(NAMES)}
    assert table.frame["image"].tolist() == [p.replace(str(tmp_path / "plain"), str(root)) for p in plain["image"]]
    assert table.frame["dish"].tolist() == plain["dish"].tolist()


def test_repeated_names_keep_one_class_per_id(tmp_path):
    root = make_food2k(tmp_path / "food2k", names=("Fried shrimp", "Spicy fish", "Fried shrimp"))
    table = read_food2k(root)
    assert table.vocab["dish"] == ["Fried shrimp [0]", "Spicy fish", "Fried shrimp [2]"]
    assert set(table.frame["dish"]) == set(table.vocab["dish"])


@pytest.mark.parametrize("label_dir", ["label", "Label/label"])
def test_food1k_rows_labels_and_classes(tmp_path, label_dir):
    root = make_food1k(tmp_path / "food1k", label_dir=label_dir)
    table = read_food1k(root)
    frame = table.frame
    assert table.vocab["dish"] == [f"food1k_{i}" for i in range(1000)]
    assert frame["split"].value_counts().to_dict() == {"train": 9, "val": 6}
    for split, folder in (("train", "Train"), ("val", "Val")):
        expected = listed(root / label_dir / f"{split}_finetune.txt")
        rows = frame[frame["split"] == split]
        assert rows["image"].tolist() == [str(root / folder / key) for key, _ in expected]
        assert rows["dish"].tolist() == [f"food1k_{label}" for _, label in expected]
    assert all(Path(p).is_file() for p in frame["image"])


@pytest.mark.parametrize("line, what", [
    ("1/101.jpg 1 x", "expected '<class id>/<file> <class id>', got '1/101.jpg 1 x'"),
    ("1/101.jpg", "expected '<class id>/<file> <class id>', got '1/101.jpg'"),
    ("3/300.jpg 3", "the folder being the class id 0..2, got '3/300.jpg 3'"),
    ("1/101.jpg 0", "the folder being the class id 0..2, got '1/101.jpg 0'"),
    ("1/101.jpg one", "the folder being the class id 0..2, got '1/101.jpg one'"),
    ("101.jpg 1", "the folder being the class id 0..2, got '101.jpg 1'"),
    ("1/ 1", "expected '<class id>/<file> <class id>'"),
])
def test_a_bad_list_line_names_file_and_line(tmp_path, line, what):
    root = make_food2k(tmp_path / "food2k")
    lines = root / "Food2k_label" / "val_finetune.txt"
    lines.write_text(lines.read_text() + "\n" + line + "\n")  # a blank line, then the bad one at line 5
    with pytest.raises(DataError) as caught:
        read_food2k(root)
    assert (caught.value.path, caught.value.line) == (str(lines), 5)
    assert what in str(caught.value)


def test_an_image_listed_twice_names_both_places(tmp_path):
    root = make_food2k(tmp_path / "food2k")
    train, test = root / "Food2k_label" / "train_finetune.txt", root / "Food2k_label" / "test_finetune.txt"
    test.write_text(test.read_text() + "0/0.jpg 0\n")
    with pytest.raises(DataError) as caught:
        read_food2k(root)
    assert (caught.value.path, caught.value.line) == (str(test), 7)
    assert f"0/0.jpg is listed twice (also {train}, line 1)" in str(caught.value)


@pytest.mark.parametrize("text, line", [("0--a\n2--b\n", 2), ("0--a\nb\n", 2), ("\n", None)])
def test_a_bad_name_list_names_its_line(tmp_path, text, line):
    root = make_food2k(tmp_path / "food2k")
    names = root / "Food2k_complete" / "food2k_label2name_en.txt"
    names.write_text(text)
    with pytest.raises(DataError) as caught:
        read_food2k(root)
    assert (caught.value.path, caught.value.line) == (str(names), line)


def test_a_name_list_in_another_encoding_is_a_data_error_naming_its_line(tmp_path):
    """Read like every other numbered list (data/paths.py): a byte-order mark is skipped, bytes that
    are not UTF-8 (here Latin-1's e-acute) are a DataError naming the line, not a traceback."""
    root = make_food2k(tmp_path / "food2k")
    names = root / "Food2k_complete" / "food2k_label2name_en.txt"
    names.write_bytes(b"\xef\xbb\xbf0--a\n1--caf\xe9\n")
    with pytest.raises(DataError, match="not UTF-8") as caught:
        read_food2k(root)
    assert (caught.value.path, caught.value.line) == (str(names), 2)


@pytest.mark.parametrize("remove, reader, hint", [
    ("Food2k_complete/food2k_label2name_en.txt", read_food2k, "FoodProject.html"),
    ("Food2k_label/train_finetune.txt", read_food2k, "Food2k_label.tar.gz"),
    ("Val", read_food1k, "LargeFineFoodAI"),
    ("label/val_finetune.txt", read_food1k, "LargeFineFoodAI"),
])
def test_missing_data_says_how_to_get_it(tmp_path, remove, reader, hint):
    root = make_food2k(tmp_path / "d") if reader is read_food2k else make_food1k(tmp_path / "d")
    target = root / remove
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    with pytest.raises(FileNotFoundError, match=hint) as caught:
        reader(root)
    assert str(root / remove) in str(caught.value)


def reference_parse(text: str) -> list[tuple[str, int, int]]:
    """(key, label, line) the plain way: split each line, normalise its path."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.split():
            key, label = line.split()
            key = key.replace("\\", "/")
            key = key[1:] if key.startswith("/") else key
            rows.append((key if "." in key.rsplit("/", 1)[-1] else key + ".jpg", int(label), number))
    return rows


def test_list_parser_matches_a_plain_python_reference(tmp_path):
    rng = random.Random(0)
    lines = []
    for _ in range(3000):
        label = rng.randrange(2000)
        lead, separator = rng.choice(["", "/", "\\"]), rng.choice(["/", "\\"])
        key = f"{lead}{label}{separator}{rng.randrange(10**6)}{rng.choice(['.jpg', '.png', '', '.x.jpeg'])}"
        lines.append(rng.choice(["", "  ", "\t"]) + key + rng.choice([" ", "\t", "   "]) + str(label)
                     + rng.choice(["", " ", "\r"]))
        if rng.random() < 0.05:
            lines.append(rng.choice(["", "   ", "\t\r"]))
    path = tmp_path / "list.txt"
    path.write_text("\n".join(lines))
    parsed = read_label_list(path, classes=2000, images=tmp_path / "images")
    expected = [(f"{tmp_path}/images/{key}", label, line) for key, label, line in reference_parse(path.read_text())]
    assert list(zip(parsed.paths, parsed.labels.tolist(), parsed.lines.tolist())) == expected


def test_registered_dish_only_unless_a_taxonomy_is_given(tmp_path):
    root = make_food2k(tmp_path / "food2k")
    assert set(sets.load("food2k", str(root)).vocab) == {"dish"}
    csv = tmp_path / "taxonomy.csv"
    csv.write_text("dish,category,cuisine,ingredients\nNapoleon cake,cake,chinese,pastry;cream\n")
    table = sets.load("food2k", str(root), sets.LoadOptions(taxonomy=str(csv)))
    cakes = table.frame[table.frame["dish"] == "Napoleon cake"]
    assert set(cakes["category"]) == {"cake"} and table.vocab["category"] == ["cake"]
    assert table.frame.loc[table.frame["dish"] != "Napoleon cake", "category"].isna().all()
    assert set(sets.load("food1k", str(make_food1k(tmp_path / "food1k"))).vocab) == {"dish"}


def run(script: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "data_prep" / script), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("dataset, make, summary", [
    ("food2k", make_food2k, "train: 9 images, 3 classes"),
    ("food1k", lambda root: make_food1k(root, tuple(range(1000)), (1, 1)), "train: 1000 images, 1000 classes"),
])
def test_verify_checks_food2k_and_food1k(tmp_path, dataset, make, summary):
    root = make(tmp_path / dataset)
    clean = run("verify.py", "--dataset", dataset, "--root", root, "--workers", 1)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert summary in clean.stdout
    images = sorted(p for p in root.rglob("*.jpg"))
    images[0].unlink()
    break_header(images[1])
    bad = run("verify.py", "--dataset", dataset, "--root", root, "--workers", 2)
    assert bad.returncode == 1
    assert f"PROBLEM missing file: {images[0]}" in bad.stdout
    assert f"PROBLEM unreadable image: {images[1]}" in bad.stdout


def test_verify_finds_the_same_problems_in_worker_chunks(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("verify", REPO / "data_prep" / "verify.py")
    verify = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verify)
    monkeypatch.setitem(sys.modules, "verify", verify)  # the pool's workers look the function up by name
    root = make_food2k(tmp_path / "food2k")
    paths = read_food2k(root).frame["image"].tolist()
    Path(paths[3]).unlink()
    break_header(Path(paths[7]))
    in_process = verify.image_problems(paths, decode=False, workers=1)
    monkeypatch.setattr(verify, "CHUNK", 2)
    assert verify.image_problems(paths, decode=False, workers=2) == in_process
    assert in_process["missing file"] == [paths[3]] and in_process["unreadable image"][0].startswith(paths[7])


def test_taxonomy_coverage_counts_exact_and_normalised_names(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("0--garlic_bread\n1--Garlic Bread\n2--Mystery dish\n3--Fried shrimp\n4--Fried shrimp\n")
    result = run("taxonomy_coverage.py", "--names", names, "--taxonomy", "food101")
    assert result.returncode == 0, result.stderr
    assert "| food101 | 101 | 1 (20.0%) | 2 (40.0%) |" in result.stdout
    missing = run("taxonomy_coverage.py", "--names", tmp_path / "none.txt")
    assert missing.returncode == 2 and missing.stderr.startswith("error: ")


def test_a_million_line_list_parses_to_the_right_labels(tmp_path):
    labels = np.random.default_rng(0).integers(0, 2000, 1_000_000)
    path = tmp_path / "train_finetune.txt"
    path.write_text("".join(f"{label}/{i}.jpg {label}\n" for i, label in enumerate(labels.tolist())))
    parsed = read_label_list(path, classes=2000, images=Path("/data"))
    assert np.array_equal(parsed.labels, labels)
    assert parsed.paths[123_456] == f"/data/{labels[123_456]}/123456.jpg" and parsed.lines[-1] == 1_000_000


@pytest.mark.parametrize("experiment, make, classes", [("food2k", make_food2k, 3), ("food1k", make_food1k, 1000)])
def test_the_shipped_experiments_build_their_data(tmp_path, experiment, make, classes):
    from foodmtl.config import load_config
    from foodmtl.data.builder import build_data

    cfg = load_config(REPO / "experiments" / experiment / "dish.yaml", [f"data.root={make(tmp_path / experiment)}"])
    bundle = build_data(cfg.data, cfg.tasks)
    assert [t.name for t in bundle.tasks] == ["dish"] and len(bundle.tasks[0].classes) == classes
    if experiment == "food2k":  # the release's val selects; this copy has no test list, so no test split
        assert len(bundle.train) == 9 and len(bundle.eval) == 3 and bundle.test is None
    else:  # Food1K's test labels are withheld: its val is the test, validation is carved from train
        assert len(bundle.train) + len(bundle.eval) == 9 and len(bundle.eval) > 0 and len(bundle.test) == 6


def test_the_food2k_experiment_trains_on_the_miniature(tmp_path):
    from foodmtl.config import load_config
    from foodmtl.engine.trainer import train

    cfg = load_config(REPO / "experiments" / "food2k" / "dish.yaml", [
        f"data.root={make_food2k(tmp_path / 'food2k')}", f"output_dir={tmp_path / 'runs'}", "run=mini",
        "model.backbone=resnet10t", "model.pretrained=false", "model.channels_last=false", "data.image_size=32",
        "data.batch_size=3", "data.eval_batch_size=3", "data.num_workers=0", "train.epochs=1", "train.amp=none",
        "tracking.wandb=disabled", "train.progress=false"])
    run_dir, final = train(cfg)
    assert "dish/top1" in final and 0.0 <= final["dish/top1"] <= 1.0
    assert (run_dir / "config.yaml").is_file()


def test_a_bad_list_line_is_one_error_line_from_the_cli(tmp_path):
    root = make_food2k(tmp_path / "food2k")
    lines = root / "Food2k_label" / "train_finetune.txt"
    lines.write_text(lines.read_text().replace("0/1.jpg 0", "0/1.jpg 2"))
    proc = subprocess.run([sys.executable, "-m", "foodmtl", "train", str(REPO / "experiments" / "food2k" / "dish.yaml"),
                           f"data.root={root}", f"output_dir={tmp_path / 'runs'}", "model.pretrained=false",
                           "tracking.wandb=disabled"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {lines}, line 2: expected '<class id>/<file> <class id>', "
                                                 "the folder being the class id 0..2, got '0/1.jpg 2'"]
