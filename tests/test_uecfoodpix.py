"""UEC-FoodPix Complete reader on a format-exact miniature of the release (quirks included), its RGB
masks read through the segmentation and mask-derived ingredient tasks, and a mixed run with
VireoFood-172."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from foodmtl.config import load_config

from foodmtl.errors import ConfigError
from foodmtl.data import sets
from foodmtl.data.builder import build_data
from foodmtl.errors import DataError
from foodmtl.data.masks import read_mask
from foodmtl.data.sets.uecfoodpix import read_uecfoodpix
from foodmtl.tasks import IGNORE_INDEX, SEG_IGNORE
from miniatures import write_jpeg
from test_vireofood172 import build as build_vireofood172

REPO = Path(__file__).resolve().parents[1]
CATEGORY = ["id\tname", "1\trice", "2\teels on rice", "3\tbeverage"]  # header, then <id><TAB><name>
WIDE, TALL = (24, 16), (16, 24)  # (width, height)


def write_mask(path: Path, size: tuple[int, int], ids: tuple[int, int]) -> None:
    """RGB PNG: class ``ids[0]`` in the red channel of the left half, ``ids[1]`` right; G and B hold
    other values, which must not be read as ids."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2, 0], pixels[:, width // 2:, 0] = ids
    pixels[..., 1], pixels[::2, :, 2] = 7, 9
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGB").save(path)


def write_rotated_jpeg(path: Path, size: tuple[int, int]) -> None:
    """A JPEG stored ``size`` whose EXIF orientation (6) tells viewers to turn it a quarter."""
    exif = Image.Exif()
    exif[0x0112] = 6
    pixels = np.random.default_rng(5).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", exif=exif.tobytes())


def build(top: Path, category: list[str] = CATEGORY, end: str = "\n", train: list[str] | None = None,
          test: list[str] | None = None) -> Path:
    """``top`` = the unpacked UECFOODPIXCOMPLETE folder. train: 1, 2, 6 (square) fine; 3 a transposed
    mask; 4 a transposed mask of an EXIF-rotated image; 5 a mask of another size. test: 10 fine;
    11 no mask."""
    data = top / "data"
    images = data / "UECFoodPIXCOMPLETE"
    for name, rows in {"category.txt": category, "train9000.txt": train or ["1", "2", "3", "4", "5", "6"],
                       "test1000.txt": test or ["10", "11"]}.items():
        data.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes("".join(f"{row}{end}" for row in rows).encode())
    pairs = [("train", "1", WIDE, WIDE, (1, 2)), ("train", "2", TALL, TALL, (3, 0)),
             ("train", "3", WIDE, TALL, (1, 1)), ("train", "4", WIDE, TALL, (2, 2)),
             ("train", "5", WIDE, (20, 16), (1, 1)), ("test", "10", WIDE, WIDE, (2, 3)),
             ("test", "11", WIDE, None, None), ("train", "6", (16, 16), (16, 16), (1, 0))]
    for split, key, image_size, mask_size, ids in pairs:
        image = images / split / "img" / f"{key}.jpg"
        if key == "4":
            image.parent.mkdir(parents=True, exist_ok=True)
            write_rotated_jpeg(image, image_size)
        else:
            write_jpeg(image, image_size, seed=int(key))
        if mask_size:
            write_mask(images / split / "mask" / f"{key}.png", mask_size, ids)
    return top


def test_rows_classes_masks_and_reported_quirks(tmp_path):
    top = build(tmp_path / "UECFOODPIXCOMPLETE")
    table = read_uecfoodpix(top)
    frame = table.frame.set_index(table.frame["image"].map(lambda p: Path(p).stem))
    assert sorted(frame.index) == ["1", "10", "11", "2", "6"]  # 11 (no mask) kept: verify reports it
    assert frame["split"].to_dict() == {"1": "train", "2": "train", "6": "train", "10": "test", "11": "test"}
    folder = top / "data" / "UECFoodPIXCOMPLETE"
    assert frame.loc["1", "image"] == str(folder / "train" / "img" / "1.jpg")
    assert frame.loc["10", "mask"] == str(folder / "test" / "mask" / "10.png")
    assert frame["dish"].isna().all() and frame["ingredients"].isna().all()  # masks are its only labels
    assert set(frame["source"]) == {"uecfoodpix"}
    assert table.vocab == {"segmentation": ["background", "rice", "eels on rice", "beverage"]}
    notes = " | ".join(table.notes)
    for expected in ("2 mask(s) are their image's size transposed (1 of these images carry an EXIF orientation",
                     "train/3, train/4", "1 mask(s) differ from their image's size: dropped (train/5)"):
        assert expected in notes, notes
    assert len(table.notes) == 2


def test_the_red_channel_is_the_class_id(tmp_path):
    mask = read_mask(str(build(tmp_path / "u") / "data" / "UECFoodPIXCOMPLETE" / "train" / "mask" / "1.png"))
    assert mask.shape == (16, 24) and mask.dtype == np.uint8
    assert (mask[:, :12] == 1).all() and (mask[:, 12:] == 2).all()


@pytest.mark.parametrize("category, end", [
    (CATEGORY, "\r\n"),
    (CATEGORY[1:], "\n"),                                          # no header line
    (["id\tname", "0\tbackground", "1\trice", "2\teels on rice", "3\tbeverage"], "\n"),  # background listed
])
def test_category_variants_read_alike(tmp_path, category, end):
    table = read_uecfoodpix(build(tmp_path / "u", category=category, end=end))
    assert table.vocab["segmentation"] == ["background", "rice", "eels on rice", "beverage"]
    assert len(table) == 5


def test_the_data_folder_itself_is_a_root(tmp_path):
    top = build(tmp_path / "u")
    assert read_uecfoodpix(top / "data").frame.equals(read_uecfoodpix(top).frame)


@pytest.mark.parametrize("file, kwargs, line, what", [
    ("category.txt", {"category": ["id\tname", "1\trice", "3\tbeverage"]}, 3, "expected '2<TAB><name>'"),
    ("category.txt", {"category": ["id\tname", "1\t"]}, 2, "expected '1<TAB><name>'"),
    ("train9000.txt", {"train": ["1", "2 3"]}, 2, "expected one image id, got '2 3'"),
    ("train9000.txt", {"train": ["1", "2", "1"]}, 3, "'1' is listed twice \\(also line 1\\)"),
    ("test1000.txt", {"test": ["10", "2"]}, 2, "'2' is also listed in train9000.txt, line 2"),
])
def test_bad_lines_name_file_and_line(tmp_path, file, kwargs, line, what):
    top = build(tmp_path / "u", **kwargs)
    with pytest.raises(DataError, match=what) as caught:
        read_uecfoodpix(top)
    assert str(caught.value).startswith(f"{top / 'data' / file}, line {line}: ")


def test_missing_release_names_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)UEC-FoodPix Complete not found.*mm.cs.uec.ac.jp/uecfoodpix"):
        read_uecfoodpix(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="no dish label to join a taxonomy on"):
        sets.load("uecfoodpix", str(build(tmp_path / "u")), sets.LoadOptions(taxonomy="food101"))


def test_verify_notes_the_dropped_pairs_and_reports_a_missing_mask(tmp_path):
    top = build(tmp_path / "u")
    result = subprocess.run([sys.executable, str(REPO / "data_prep" / "verify.py"), "--dataset", "uecfoodpix",
                             "--root", str(top), "--workers", "1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "train: 3 images, 3 masks, no dish labels" in result.stdout
    assert "test: 2 images, 2 masks, no dish labels" in result.stdout
    assert "note: 2 mask(s) are their image's size transposed" in result.stdout
    assert "PROBLEM missing file: " in result.stdout and "test/mask/11.png" in result.stdout
    assert "FAILED: 1 problem(s)" in result.stdout


def sources(vireo: Path, uec: Path) -> str:
    return f"data.sources=[{{dataset: vireofood172, root: {vireo}}}, {{dataset: uecfoodpix, root: {uec}}}]"


def marked(spec, target: torch.Tensor) -> set[str]:
    return {spec.classes[i] for i in torch.nonzero(target == 1).flatten().tolist()}


@pytest.mark.parametrize("from_masks", [False, True])
def test_mixed_run_each_sample_carries_only_its_sources_labels(tmp_path, from_masks):
    vireo, uec = build_vireofood172(tmp_path / "VireoFood172"), build(tmp_path / "UECFOODPIXCOMPLETE")
    tasks = ["dish", "ingredients", "segmentation"]
    cfg = load_config(None, [sources(vireo, uec), f"tasks=[{','.join(tasks)}]", "data.image_size=16",
                             "data.num_workers=0", "data.eval_split=train"])
    options = {"ingredients": {"from_masks": True}} if from_masks else None
    data = build_data(cfg.data, tasks, task_options=options)
    spec = {t.name: t for t in data.tasks}
    paths = list(data.eval.paths)  # the training images through the deterministic eval transform (centre crop)
    vireo_item = data.eval[paths.index(str(vireo / "ready_chinese_food" / "1" / "1_1.jpg"))]["targets"]
    uec_item = data.eval[paths.index(str(uec / "data" / "UECFoodPIXCOMPLETE" / "train" / "img" / "1.jpg"))]["targets"]

    assert spec["dish"].classes[int(vireo_item["dish"])] == "Braised pork"
    assert marked(spec["ingredients"], vireo_item["ingredients"]) == {"Pork", "Scallion"}
    assert bool((vireo_item["segmentation"] == SEG_IGNORE).all())

    assert int(uec_item["dish"]) == IGNORE_INDEX
    assert set(torch.unique(uec_item["segmentation"]).tolist()) == {1, 2}  # R channel ids, never G (7) or B (9)
    if from_masks:  # the mask's classes, by name, in the union of both sources' ingredient names
        assert marked(spec["ingredients"], uec_item["ingredients"]) == {"rice", "eels on rice"}
    else:
        assert bool((uec_item["ingredients"] == IGNORE_INDEX).all())


def test_reader_benchmark_runs_and_prints_its_rows():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "readers.py"), "--vireo-rows", "300",
                           "--uec-pairs", "20", "--side", "32", "--repeats", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for row in ("| VireoFood-172 reader, 300 rows |", "| UEC-FoodPix reader, 20 pairs |", "size check (40 headers)"):
        assert row in proc.stdout, proc.stdout
