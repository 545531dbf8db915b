"""``foodmtl predict``, ``eval --plots`` and ``embed`` on a tiny model trained here, with a segmentation task."""
import errno
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import wandb_records
from foodmtl.cli import main
from foodmtl.config import load_config
from foodmtl.engine.trainer import train

TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"
TASKS = "tasks=[dish,category,cuisine,ingredients,segmentation]"


@pytest.fixture(scope="module")
def checkpoint(synthfood_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={out}", "run=seg", TASKS,
                             "train.max_steps=3", "tracking.wandb=disabled"])
    run_dir, _ = train(cfg)
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    classes = {t["name"]: t["classes"] for t in state["tasks"]}
    return run_dir / "checkpoints" / "last.pt", classes


@pytest.fixture(scope="module")
def images(synthfood_root):
    return [str(p) for p in sorted((synthfood_root / "food101" / "images").rglob("*.jpg"))[:3]]


def predict(args, capsys) -> tuple[int, list[dict]]:
    code = main(["predict", *map(str, args), "--cpu"])
    return code, json.loads(capsys.readouterr().out)


def assert_ranked(entries: list[dict], classes: list[str]) -> None:
    probs = [e["prob"] for e in entries]
    assert probs == sorted(probs, reverse=True)
    assert all(0 <= p <= 1 for p in probs) and all(e["name"] in classes for e in entries)


def test_json_has_ranked_classes_and_a_mask_overlay_per_image(checkpoint, images, tmp_path, capsys):
    path, classes = checkpoint
    assert main(["predict", str(path), *images, "--out", str(tmp_path), "--cpu"]) == 0
    written = tmp_path / "predictions.json"
    assert capsys.readouterr().out == f"predicted 3 of 3 image(s): {written}, 3 overlay PNG(s)\n"  # not the JSON
    records = json.loads(written.read_text())
    assert [r["image"] for r in records] == images
    for record in records:
        assert len(record["dish"]) == 5
        for task in ("dish", "category", "cuisine"):
            assert_ranked(record[task], classes[task])
            assert sum(e["prob"] for e in record[task]) <= 1 + 1e-5
        assert_ranked(record["ingredients"], classes["ingredients"])
        assert all(e["prob"] >= 0.5 for e in record["ingredients"])
        seg = record["segmentation"]
        assert set(seg["classes"]) <= set(classes["segmentation"])
        overlay = Image.open(seg["overlay"])
        assert overlay.width > overlay.height >= 256  # the picture plus a legend to its right


def test_threshold_and_top_k_select_classes(checkpoint, images, capsys):
    path, classes = checkpoint
    _, everything = predict([path, images[0], "--threshold", "0", "--top-k", "2"], capsys)
    _, nothing = predict([path, images[0], "--threshold", "1.01"], capsys)
    assert len(everything[0]["ingredients"]) == len(classes["ingredients"])
    assert len(everything[0]["dish"]) == len(everything[0]["cuisine"]) == 2
    assert nothing[0]["ingredients"] == []
    assert "overlay" not in nothing[0]["segmentation"]  # no --out: no pictures


def test_unreadable_image_is_reported_and_the_rest_predicted(checkpoint, images, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    code = main(["predict", str(checkpoint[0]), str(broken), images[0], "--cpu"])
    out, err = capsys.readouterr()
    records = json.loads(out)
    assert code == 1 and str(broken) in err
    assert "cannot read image" in records[0]["error"] and "dish" in records[1]


def test_eval_plots_a_confusion_matrix_per_single_label_task(checkpoint, tmp_path, capsys):
    assert main(["eval", str(checkpoint[0]), "--cpu", "--plots", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{kind}_{task}.{ext}" for task in ("category", "cuisine", "dish")
        for kind, ext in [("confusion", "png"), ("confused_pairs", "csv"), ("confused_pairs", "png")])
    assert "confusion_dish.png" in capsys.readouterr().out


def test_embed_command_writes_dish_and_cuisine_maps(checkpoint, tmp_path, capsys):
    assert main(["embed", str(checkpoint[0]), "--out", str(tmp_path), "--split", "train", "--limit", "40",
                 "--cpu"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tsne_cuisine.png", "tsne_dish.png"]


def test_a_folder_means_its_images_and_those_of_its_sub_folders(checkpoint, images, tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "lunch").mkdir(parents=True)
    (photos / ".thumbnails").mkdir()
    shutil.copy(images[0], photos / "lunch" / "soup.JPG")
    Image.open(images[1]).save(photos / "salad.png")
    shutil.copy(images[2], photos / ".thumbnails" / "salad.jpg")  # hidden: skipped
    (photos / "notes.txt").write_text("not an image")
    code, records = predict([checkpoint[0], photos], capsys)
    assert code == 0
    assert [r["image"] for r in records] == [str(photos / "lunch" / "soup.JPG"), str(photos / "salad.png")]
    assert all("dish" in r for r in records)
    (photos / "lunch" / "soup.JPG").unlink()
    (photos / "salad.png").unlink()
    assert main(["predict", str(checkpoint[0]), str(photos), "--cpu"]) == 2
    assert f"no images (.jpg, .jpeg, .png, .webp, .bmp) in folder {photos}" in capsys.readouterr().err


def test_predict_shows_a_progress_bar_on_a_terminal(checkpoint, images, capsys, monkeypatch):
    for terminal in (False, True):
        monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
        assert main(["predict", str(checkpoint[0]), *images, "--cpu"]) == 0
        assert ("predict:" in capsys.readouterr().err) == terminal


def test_a_full_disk_while_drawing_overlays_is_one_error_line_and_leaves_no_partial_png(
        checkpoint, images, tmp_path, capsys, monkeypatch):
    def disk_full(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    assert main(["predict", str(checkpoint[0]), images[0], "--out", str(tmp_path), "--cpu"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {tmp_path}/overlay_000_")
    assert "No space left on device" in err[0] and list(tmp_path.iterdir()) == []


def run_record(folder: Path) -> dict:
    run_file = wandb_records.segments(folder)[-1]
    return next(r["run"] for r in wandb_records.records(run_file) if r["type"] == "run")


def test_eval_and_predict_log_to_wandb_in_the_training_runs_project_and_group(checkpoint, images, tmp_path, capsys,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", str(checkpoint[0]), "--cpu", "--json", "metrics.json", "--wandb", "offline"]) == 0
    run = run_record(tmp_path)
    assert (run["job_type"], run["run_group"], run["project"], run["display_name"]) == (
        "eval", "synthfood-tiny", "foodmtl", "seg-eval")
    (logged,) = wandb_records.history(wandb_records.segments(tmp_path)[-1])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {k: logged[f"eval/{k}"] for k in metrics} == pytest.approx(metrics)

    out = tmp_path / "predictions"
    assert main(["predict", str(checkpoint[0]), *images, "--out", str(out), "--cpu", "--wandb", "offline"]) == 0
    run = run_record(out)
    assert (run["job_type"], run["run_group"], run["display_name"]) == ("predict", "synthfood-tiny", "seg-predict")
    (logged,) = wandb_records.history(wandb_records.segments(out)[-1])
    table = {k.split(".", 1)[1]: v for k, v in logged.items() if k.startswith("predictions.")}
    assert (table["_type"], table["nrows"], table["ncols"]) == ("table-file", len(images), 3 + 5)  # + 5 tasks


def test_coco_image_ids_match_each_file_by_its_longest_listed_trailing_path(tmp_path):
    from foodmtl.commands.predict import coco_image_ids, coco_results
    from foodmtl.errors import ConfigError, DataError
    listing = tmp_path / "val.json"
    listing.write_text(json.dumps({"images": [{"id": 7, "file_name": "a.jpg"}, {"id": 9, "file_name": "val/a.jpg"},
                                              {"id": 4, "file_name": "b.jpg"}]}))
    paths = [str(tmp_path / "val" / "a.jpg"), str(tmp_path / "other" / "a.jpg"), str(tmp_path / "val" / "b.jpg")]
    assert coco_image_ids(listing, paths) == [9, 7, 4]
    records = [{"image": p, "instances": {"instances": [{"class": "egg", "category_id": 3, "score": 0.9}]}}
               for p in paths]
    assert [r["image_id"] for r in coco_results(records, [9, 7, 4])] == [9, 7, 4]
    assert [r["image_id"] for r in coco_results(records)] == [1, 2, 3]          # positions without a listing
    with pytest.raises(ConfigError, match=r"lists 1 of the 2 images; not: .*c\.jpg"):
        coco_image_ids(listing, [str(tmp_path / "b.jpg"), str(tmp_path / "c.jpg")])
    listing.write_text(json.dumps({"images": [{"id": "7", "file_name": "a.jpg"}]}))
    with pytest.raises(DataError, match="no COCO 'images' list"):
        coco_image_ids(listing, paths)


def test_a_missing_coco_images_file_is_one_error_line_before_any_model_is_loaded(images, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "no.pt"), str(images[0]), "--coco-images", str(tmp_path / "no.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --coco-images") and err.count("\n") == 1 and "no.json: no such file" in err
