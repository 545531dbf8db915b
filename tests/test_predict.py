"""``foodmtl predict``, ``eval --plots`` and ``embed`` on a tiny model trained here, with a segmentation task."""
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

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
    code, records = predict([path, *images, "--out", tmp_path], capsys)
    assert code == 0
    assert json.loads((tmp_path / "predictions.json").read_text()) == records
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
