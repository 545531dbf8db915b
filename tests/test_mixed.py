"""Mixed training: classification-only and mask-only sources in one run, drawn at a set ratio."""
from pathlib import Path

import pytest
from PIL import Image
import torch

from foodmtl.config import load_config

from foodmtl.errors import ConfigError
from foodmtl.data.builder import build_data, merge_vocab, train_loader
from foodmtl.engine.trainer import train
from foodmtl.tasks import IGNORE_INDEX, SEG_IGNORE

TASKS = ["dish", "ingredients", "segmentation"]
TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"


def sources(root, ratio=3.0) -> list[str]:
    return [f"data.sources=[{{dataset: food101, root: {root}/food101, taxonomy: {root}/taxonomy.csv, "
            f"weight: {ratio}}}, {{dataset: foodseg103, root: {root}/foodseg103, weight: 1}}]"]


def mixed_config(root, *extra, ratio=3.0):
    return load_config(None, [*sources(root, ratio), f"tasks=[{','.join(TASKS)}]", "data.image_size=48",
                              "data.num_workers=0", *extra])


def test_each_sample_carries_only_its_sources_labels(synthfood_root):
    data = build_data(mixed_config(synthfood_root).data, TASKS)
    seg_index = next(i for i, p in enumerate(data.train.paths) if "img_dir" in p)
    cls_index = next(i for i, p in enumerate(data.train.paths) if "img_dir" not in p)
    cls, seg = data.train[cls_index]["targets"], data.train[seg_index]["targets"]
    assert int(cls["dish"]) != IGNORE_INDEX and bool((cls["segmentation"] == SEG_IGNORE).all())
    assert int(seg["dish"]) == IGNORE_INDEX and bool((seg["ingredients"] == IGNORE_INDEX).all())
    assert bool((seg["segmentation"] != SEG_IGNORE).any())


@pytest.mark.parametrize("ratio", [3.0, 1 / 3])
def test_sources_are_drawn_at_the_configured_ratio(synthfood_root, ratio):
    data = build_data(mixed_config(synthfood_root, ratio=ratio).data, TASKS)
    is_cls = torch.tensor(["img_dir" not in p for p in data.train.paths])
    sampler = train_loader(data.train, 8, 0, seed=1, weights=data.train_weights).sampler
    drawn = []
    for epoch in range(30):
        sampler.set_epoch(epoch)
        drawn += [index for index, _ in sampler]
    share = is_cls[torch.tensor(drawn)].float().mean().item()
    assert share == pytest.approx(ratio / (ratio + 1), abs=0.03)


def test_sources_with_different_mask_classes_are_refused():
    with pytest.raises(ConfigError, match="segmentation classes"):
        merge_vocab([{"segmentation": ["bg", "rice"]}, {"segmentation": ["bg", "egg"]}])


def test_from_masks_over_sources_with_different_mask_classes_is_one_error_naming_them(synthfood_root, tmp_path,
                                                                                      capsys):
    """A second FoodSeg103 whose category_id.txt calls id 2 something else: its masks' id 2 would be
    read as the first source's class 2, so the run is refused, naming both sources and the id."""
    from foodmtl.cli import main
    other = tmp_path / "other"
    other.mkdir()
    (other / "Images").symlink_to(synthfood_root / "foodseg103" / "Images")
    lines = (synthfood_root / "foodseg103" / "category_id.txt").read_text().splitlines()
    was = lines[2].split("\t")[1]
    lines[2] = "2\trenamed"
    (other / "category_id.txt").write_text("\n".join(lines) + "\n")
    first = synthfood_root / "foodseg103"
    code = main(["train", str(TINY), f"output_dir={tmp_path}", "tasks=[ingredients]",
                 "task_options.ingredients.from_masks=true",
                 f"data.sources=[{{dataset: foodseg103, root: {first}}}, {{dataset: foodseg103, root: {other}}}]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0] == (f"error: source foodseg103 at {first} and source foodseg103 at {other} disagree on the "
                      f"segmentation classes, which their files store as ids: id 2: {was!r} vs 'renamed'; remap "
                      "one's files to the other's classes (category_id.txt) first")


def test_class_vocabularies_are_merged_in_order():
    assert merge_vocab([{"dish": ["a", "b"]}, {"dish": ["b", "c"], "cuisine": ["x"]}]) == \
        {"dish": ["a", "b", "c"], "cuisine": ["x"]}


def test_a_mixed_run_trains_every_task_with_finite_losses(synthfood_root, tmp_path):
    cfg = mixed_config(synthfood_root, f"output_dir={tmp_path}", "run=mixed", "experiment=mixed",
                       "model.backbone=resnet10t", "model.channels_last=false", "train.epochs=1",
                       "data.batch_size=8", "weighting.name=uncertainty", "tracking.wandb=disabled",
                       "train.progress=false")
    run_dir, final = train(cfg)
    assert {"dish/top1", "ingredients/mAP", "segmentation/mIoU"} <= set(final)
    assert all(v == v for v in final.values())
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert not any("NaN" in line or "Infinity" in line for line in lines)
    overlays = sorted((run_dir / "overlays").glob("*.png"))
    assert len(overlays) == cfg.train.overlays
    with Image.open(overlays[0]) as picture:  # ground truth | prediction, each with a legend
        assert picture.width > 2 * cfg.data.image_size and picture.height >= cfg.data.image_size
