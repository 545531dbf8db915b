"""The instances task (Mask R-CNN): COCO data, loss plumbing, COCOeval numbers, a real run."""
import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from pycocotools import mask as mask_utils
from torchvision.ops import masks_to_boxes

from foodmtl.config import load_config
from foodmtl.data.builder import build_data
from foodmtl.data.sets.coco_instances import load_instances, read_coco_instances
from foodmtl.data.dataset import collate
from foodmtl.tasks.metrics.coco import coco_ap, image_truth
from foodmtl.engine.objective import Objective
from foodmtl.engine.trainer import train
from foodmtl.models.backbone import Backbone
from foodmtl.models.multitask import MultiTaskModel
from foodmtl.tasks import TaskSpec, loss_owners
from foodmtl.tasks.instances import KIND
from foodmtl.weighting import build_weighting

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "synthfood" / "instances.yaml"
SMALL = {"fpn_channels": 32, "box_head_dim": 64, "mask_head_layers": 1, "anchor_scale": 4, "proposals": 100,
         "rois_per_image": 64}
COMPONENTS = ["rpn_objectness", "rpn_box", "classifier", "box", "mask"]


# ---- COCOeval against a case worked out by hand -------------------------------------------
def square(x0: int, y0: int, side: int, size: int = 64) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[y0:y0 + side, x0:x0 + side] = 1
    return mask


def shape(mask: np.ndarray, score: float | None = None, category: int = 1) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    out = {"segmentation": rle, "bbox": [float(v) for v in mask_utils.toBbox(rle)],
           "area": float(mask.sum()), "category_id": category}
    return out if score is None else {**out, "score": score}


def test_coco_ap_of_a_hand_made_case():
    """Two images, one object each. The top-scoring detection (0.95) is a false positive on image b,
    the next (0.9) finds a's object exactly, b's object is missed: precision 1/2 up to recall 1/2,
    so each of COCOeval's 101 recall points 0, 0.01, ..., 0.50 scores 0.5 and the rest 0:
    AP = 51 * 0.5 / 101 at every IoU threshold, for boxes and masks alike."""
    truth = {"a": {"size": [64, 64], "annotations": [shape(square(10, 10, 20))]},
             "b": {"size": [64, 64], "annotations": [shape(square(30, 30, 16))]}}
    found = [("b", shape(square(0, 0, 8), 0.95)), ("a", shape(square(10, 10, 20), 0.9))]
    expected = 51 * 0.5 / 101
    assert coco_ap(truth, found, 1) == pytest.approx({f"{t}_{m}": expected for t in ("bbox", "segm")
                                                      for m in ("AP", "AP50", "AP75")})
    # a 20x13 detection one row above a's 20x20 object: IoU 247 / 413 = 0.598, a match at the IoU
    # thresholds 0.50 and 0.55 only, 2 of the 10 that AP averages over
    near = square(10, 9, 20) * (np.arange(64) < 23)[None, :]
    half = coco_ap(truth, [("a", shape(near, 0.9))], 1)
    assert half["segm_AP50"] == pytest.approx(51 / 101) and half["segm_AP75"] == 0.0
    assert half["segm_AP"] == pytest.approx(2 / 10 * 51 / 101)
    assert coco_ap(truth, [], 1)["segm_AP"] == 0.0


def pycocotools_ap(truth: dict[str, dict], found: list[tuple[str, dict]], iou_type: str) -> float:
    """COCOeval's own AP (stats[0]) on a ground-truth json built straight from ``truth``."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    ids = {key: i for i, key in enumerate(truth, start=1)}
    gt = COCO()
    gt.dataset = {"images": [{"id": ids[k], "height": 64, "width": 64} for k in truth],
                  "annotations": [{**a, "id": n, "image_id": ids[k]} for n, (k, a) in enumerate(
                      ((k, a) for k, v in truth.items() for a in v["annotations"]), start=1)],
                  "categories": [{"id": 1}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes([{**d, "image_id": ids[k]} for k, d in found]), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def test_a_detection_inside_a_crowd_region_is_ignored_as_cocoeval_does():
    """One object, found exactly (score 0.8), and a crowd region that the top detection (0.9) lies in.
    COCO's protocol ignores that detection: AP 1. With the crowd region dropped it is a false positive
    ranked first: precision 1/2 at every recall, AP 1/2."""
    crowd = {**shape(square(36, 36, 24)), "iscrowd": 1}
    truth = {"a": {"size": [64, 64], "annotations": [{**shape(square(4, 4, 20)), "iscrowd": 0}, crowd]}}
    found = [("a", shape(square(40, 40, 12), 0.9)), ("a", shape(square(4, 4, 20), 0.8))]
    ap = coco_ap(truth, found, 1)
    assert ap["segm_AP"] == pycocotools_ap(truth, found, "segm") == pytest.approx(1.0)
    assert ap["bbox_AP"] == pycocotools_ap(truth, found, "bbox") == pytest.approx(1.0)
    dropped = {"a": {"size": [64, 64], "annotations": truth["a"]["annotations"][:1]}}
    assert coco_ap(dropped, found, 1)["segm_AP"] == pytest.approx(0.5)


def test_crowd_regions_reach_the_metric_as_iscrowd_and_never_the_loss():
    model, tasks = tiny_model()
    crowd = torch.from_numpy(square(40, 40, 12))
    with_crowd = tiny_batch([True], crowd=crowd)
    target = with_crowd.targets["instances"].images[0]
    assert target["crowd_masks"].tolist() == [crowd.tolist()] and target["crowd_labels"].tolist() == [1]
    assert len(target["masks"]) == 2  # the objects alone are trained on
    truth = image_truth(target)["annotations"]
    assert [a["iscrowd"] for a in truth] == [0, 0, 1] and truth[2]["area"] == 144
    model.eval()
    assert torch.equal(instance_loss(model, with_crowd).detach(), instance_loss(model, tiny_batch([True])).detach())


# ---- data --------------------------------------------------------------------------------
def test_synthfood_instances_are_the_connected_regions_of_its_masks(synthfood_root):
    from PIL import Image
    data = json.loads((synthfood_root / "foodseg103" / "instances_test.json").read_text())
    names = [line.split("\t")[1] for line in (synthfood_root / "foodseg103" / "category_id.txt").read_text().splitlines()]
    assert [c["name"] for c in data["categories"]] == names[1:]
    image = data["images"][0]
    mask = np.asarray(Image.open(synthfood_root / "foodseg103" / "Images" / "ann_dir" / "test" /
                                 image["file_name"].replace(".jpg", ".png")))
    anns = [a for a in data["annotations"] if a["image_id"] == image["id"]]
    assert len(anns) >= 3
    for ann in anns:
        pixels = mask_utils.decode(ann["segmentation"]).astype(bool)
        assert (mask[pixels] == ann["category_id"]).all() and pixels.sum() == ann["area"]


def write_coco(folder: Path) -> Path:
    """Non-contiguous ids, a polygon, an RLE, a degenerate polygon and a crowd annotation."""
    from PIL import Image
    (folder / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(folder / "images" / "a.png")
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(folder / "images" / "b.png")
    rle = mask_utils.encode(np.asfortranarray(square(20, 5, 10, 50)[:40]))
    data = {"images": [{"id": 7, "file_name": "a.png", "height": 40, "width": 50},
                       {"id": 9, "file_name": "b.png", "height": 40, "width": 50}],
            "categories": [{"id": 101005, "name": "rice"}, {"id": 3, "name": "egg"}],
            "annotations": [
                {"id": 1, "image_id": 7, "category_id": 101005, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]},
                {"id": 2, "image_id": 7, "category_id": 3, "segmentation": {"size": [40, 50],
                                                                            "counts": rle["counts"].decode()}},
                {"id": 3, "image_id": 7, "category_id": 3, "segmentation": [[1, 1, 5, 5]]},
                {"id": 4, "image_id": 7, "category_id": 3, "iscrowd": 1, "segmentation": [[30, 30, 40, 30, 40, 38]]}]}
    (folder / "annotations.json").write_text(json.dumps(data))
    return folder / "annotations.json"


def test_coco_instances_read_directly_with_ids_mapped_by_name(tmp_path):
    table = read_coco_instances(write_coco(tmp_path / "train"), tmp_path / "train" / "images", "train")
    assert table.vocab["instances"] == ["egg", "rice"]  # ascending COCO id: 3, then 101005
    assert table.notes == ["annotations.json: 1 degenerate shape(s) skipped"]
    a, b = table.frame["instances"]
    masks, classes, crowd = load_instances(a, (40, 50), ("egg", "rice"))
    assert classes.tolist() == [1, 0, 0] and masks.shape == (3, 40, 50)
    assert crowd.tolist() == [False, False, True]  # the crowd region is kept, flagged
    assert masks[0].sum() == 100 and masks[1].sum() == 100
    assert masks[2].sum() == mask_utils.area(mask_utils.frPyObjects([[30, 30, 40, 30, 40, 38]], 40, 50))[0]
    none, _, _ = load_instances(b, (40, 50), ("egg", "rice"))
    assert none.shape == (0, 40, 50)  # listed without annotations: a negative, not unlabelled


@pytest.mark.parametrize("size", [32, 16])
def test_instances_decode_their_image_at_full_size_whatever_the_input_size(synthfood_root, size):
    """A small input lets JPEG decoding shrink the image (draft mode); the instance masks are drawn at
    the file's size, so their image must not be (before: every sample skipped as 'image is 64x64 there
    but its file is 32x32')."""
    data = build_data(load_config(CONFIG, [f"data.root={synthfood_root}", f"data.image_size={size}"]).data,
                      ["dish", "instances"])
    for dataset in (data.train, data.eval):
        item = dataset[0]
        assert "skipped" not in item, item.get("skipped")
        assert item["image"].shape[-2:] == (size, size) and "instances" in item["labelled"]


def test_instance_masks_follow_the_augmented_image(synthfood_root):
    """Under random crops and flips each instance mask stays inside the pixels the (same-transform)
    semantic mask gives its class, and its box is exactly the mask's extent."""
    data = build_data(load_config(CONFIG, [f"data.root={synthfood_root}"]).data, ["segmentation", "instances"])
    for i in range(6):
        item = data.train[(i, 100 + i)]
        seg, inst = item["targets"]["segmentation"], item["targets"]["instances"].images[0]
        assert len(inst["masks"]) > 0
        for mask, label, box in zip(inst["masks"].bool(), inst["labels"], inst["boxes"]):
            assert (seg[mask] == label + 1).all()
            ys, xs = mask.nonzero(as_tuple=True)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


# ---- loss plumbing -----------------------------------------------------------------------
def tiny_model(separate: bool = False, seed: int = 0) -> tuple[MultiTaskModel, list[TaskSpec]]:
    torch.manual_seed(seed)
    tasks = [TaskSpec("dish", "multiclass", ("a", "b")),
             TaskSpec("instances", "instances", ("egg", "rice"), KIND.check_options("instances",
                                                                                    {**SMALL, "separate_losses": separate}))]
    backbone = Backbone("resnet10t", multiscale=True)
    return MultiTaskModel(backbone, tasks), tasks


def tiny_batch(labelled: list[bool], crowd: torch.Tensor | None = None):
    """Two objects per labelled image (classes 0 and 1), and ``crowd`` as a crowd region of class 1."""
    items = []
    for k, has in enumerate(labelled):
        masks = torch.stack([torch.from_numpy(square(8 + 4 * k, 10, 20)), torch.from_numpy(square(36, 30, 16)),
                             *([] if crowd is None else [crowd])])
        label = (f"img{k}", [0, 1, 1][:len(masks)], [False, False, True][:len(masks)])
        target = KIND.target(None, label if has else None, {"image": torch.zeros(3, 64, 64), "masks": masks})
        items.append({"image": torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(k)),
                      "targets": {"dish": torch.tensor(k % 2), "instances": target},
                      "labelled": ["dish"] + (["instances"] if has else [])})
    return collate(items)


def instance_loss(model, batch) -> torch.Tensor:
    torch.manual_seed(1)  # RPN and RoI sampling draw from the global RNG
    out = model(batch.images).logits["instances"]
    return KIND.loss(model.tasks[1], out, batch.targets["instances"])


def test_images_without_instances_add_no_loss_and_no_gradient():
    model, _ = tiny_model()
    model.eval()  # batch norm in eval mode: an image's features do not depend on its batch
    both = instance_loss(model, tiny_batch([True, False]))
    alone = instance_loss(model, tiny_batch([True]))  # the same first image, alone
    assert float(both.detach()) == pytest.approx(float(alone.detach()), rel=1e-5) and float(both.detach()) > 0
    model.train()
    none = instance_loss(model, tiny_batch([False, False]))
    none.backward()
    assert float(none) == 0.0
    grads = [p.grad for p in model.heads["instances"].parameters()]
    assert all(g is not None and not g.any() for g in grads)  # reached (DDP needs that), but zero


@pytest.mark.parametrize("strategy, separate", [("uniform", False), ("uncertainty", True), ("dwa", True),
                                                ("pcgrad", True), ("cagrad", False)])
def test_instance_losses_enter_weighting_strategies_as_one_or_five_tasks(strategy, separate):
    model, tasks = tiny_model(separate)
    owners = loss_owners(tasks)
    names = ["dish", *([f"instances:{c}" for c in COMPONENTS] if separate else ["instances"])]
    assert list(owners) == names
    weighting = build_weighting(strategy, names, {}, {n: t.kind for t in tasks for n in owners if owners[n] == t.name})
    objective = Objective(model, weighting)
    batch = tiny_batch([True, False])
    out = objective(batch.images, batch.targets, batch.present)
    assert set(out.present) == set(names) and all(torch.isfinite(out.losses[n]) for n in names)
    if weighting.gradient_based:
        losses = {t: out.losses[t] for t in out.present}
        weights = weighting.backward(losses, list(model.backbone.parameters()), out.representation)
    else:
        out.total.backward()
        weights = out.weights
    assert set(weights) == set(names)
    head = model.heads["instances"]
    assert head.roi_heads.mask_predictor.mask_fcn_logits.weight.grad.abs().sum() > 0
    assert objective.task_parameters(names[-1])[0] is next(head.parameters())


def test_predict_draws_instances_and_writes_coco_results(synthfood_root, tmp_path):
    from foodmtl.commands.predict import report
    from foodmtl.engine.predict import predict
    from foodmtl.tasks import instances
    model, _ = tiny_model()
    image = next((synthfood_root / "foodseg103" / "Images" / "img_dir" / "test").glob("*.jpg"))
    records = predict(model, [str(image)], 64, out_dir=tmp_path)
    assert isinstance(records[0]["instances"]["instances"], list) and Path(records[0]["instances"]["overlay"]).is_file()
    fake = {"class": "egg", "category_id": 1, "score": 0.9, "bbox": [1, 2, 3, 4], "segmentation": {"size": [64, 64], "counts": "0"}}
    report([{"image": "x.jpg", "instances": {"instances": [fake]}}], tmp_path)
    results = json.loads((tmp_path / "coco_results.json").read_text())
    assert results == [{"image_id": 1, **{k: v for k, v in fake.items() if k != "class"}}]
    assert instances.REPORT_SCORE == 0.5


def detector(found: dict[str, torch.Tensor]) -> SimpleNamespace:
    """A model output whose head detects ``found`` (boxes xyxy, labels, scores, mask probabilities)."""
    return SimpleNamespace(head=SimpleNamespace(detect=lambda output: [found]))


def found_on(target: dict, picks: list[tuple[int, int, float]]) -> dict[str, torch.Tensor]:
    """Detections copying ground-truth object ``i`` with class ``label`` and ``score``."""
    index = [i for i, _, _ in picks]
    return {"boxes": target["boxes"][index], "labels": torch.tensor([k for _, k, _ in picks]),
            "scores": torch.tensor([p for _, _, p in picks]), "masks": target["masks"][index].float()}


def test_coco_results_carry_the_data_sets_category_ids_and_score_as_the_runs_own_evaluation(tmp_path, capsys):
    """Category ids 3 and 101005 (not 1 and 2); scores 5e-6 apart that 4 decimals would tie, the
    false positive listed first: loadRes + COCOeval of coco_results.json against the data set's json
    (its ids, the ground truth as the model saw it) scores what the run's own evaluation scores."""
    from foodmtl.commands.predict import report
    from foodmtl.tasks.base import PredictContext
    from foodmtl.tasks.metrics.coco import InstanceMetrics
    table = read_coco_instances(write_coco(tmp_path / "train"), tmp_path / "train" / "images", "train")
    spec = KIND.fit(TaskSpec("instances", "instances", ("egg", "rice"), KIND.check_options("instances", {})),
                    table.frame["instances"])
    assert spec.options["category_ids"] == [3, 101005]
    images = tiny_batch([True, True]).targets["instances"]
    found = [found_on(images.images[0], [(1, 0, 0.500010), (0, 0, 0.500015)]),  # a wrong class, then a hit
             found_on(images.images[1], [(0, 0, 0.91), (1, 1, 0.62)])]
    own = InstanceMetrics(2)
    for k in range(2):
        own.update(detector(found[k]), images[k])
    records = [{"image": f"{k}.png", "instances": KIND.describe(spec, detector(found[k]), PredictContext())}
               for k in range(2)]
    report(records, tmp_path)
    results = json.loads((tmp_path / "coco_results.json").read_text())
    assert {r["category_id"] for r in results} == {3, 101005} and 0.500015 != round(0.500015, 4)
    truth = [image_truth(image) for image in images.images]
    dataset = {"images": [{"id": k, "height": 64, "width": 64} for k in (1, 2)],
               "categories": [{"id": 3, "name": "egg"}, {"id": 101005, "name": "rice"}],
               "annotations": [{**a, "id": 10 * k + n, "image_id": k, "category_id": [3, 101005][a["category_id"] - 1]}
                               for k, t in enumerate(truth, start=1) for n, a in enumerate(t["annotations"])]}
    expected = own.compute()
    assert 0 < expected["segm_AP"] < 1
    for iou_type in ("segm", "bbox"):
        assert cocoeval_stats(dataset, results, iou_type)[:3] == pytest.approx(
            [expected[f"{iou_type}_{m}"] for m in ("AP", "AP50", "AP75")], abs=1e-12)


def cocoeval_stats(dataset: dict, results: list[dict], iou_type: str) -> list[float]:
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(v) for v in evaluator.stats]


def test_annotation_files_that_disagree_on_a_category_id_record_none_and_say_so(tmp_path, caplog):
    first = read_coco_instances(write_coco(tmp_path / "a"), tmp_path / "a" / "images", "train")
    other = write_coco(tmp_path / "b")
    other.write_text(other.read_text().replace('"id": 3, "name": "egg"', '"id": 4, "name": "egg"')
                     .replace('"category_id": 3', '"category_id": 4'))
    second = read_coco_instances(other, tmp_path / "b" / "images", "train")
    spec = TaskSpec("instances", "instances", ("egg", "rice"), KIND.check_options("instances", {}))
    with caplog.at_level("WARNING", logger="foodmtl"):
        fitted = KIND.fit(spec, pd.concat([first.frame["instances"], second.frame["instances"]]))
    assert "category_ids" not in fitted.options
    assert "no single COCO category id for 'egg' (ids [3, 4])" in caplog.text


def test_no_instance_above_the_report_score_writes_an_empty_list_and_says_so(tmp_path, capsys):
    from foodmtl.commands.predict import report
    from foodmtl.tasks.base import PredictContext
    image = tiny_batch([True]).targets["instances"].images[0]
    spec = TaskSpec("instances", "instances", ("egg", "rice"), {"category_ids": [3, 101005]})
    records = [{"image": "a.png", "instances": KIND.describe(spec, detector(found_on(image, [(0, 0, 0.3)])),
                                                             PredictContext())}]
    report(records, tmp_path)
    assert json.loads((tmp_path / "coco_results.json").read_text()) == []
    assert f"no instance scored 0.5 or more: {tmp_path / 'coco_results.json'} is an empty list" in capsys.readouterr().out


def test_a_checkpoint_without_category_ids_writes_index_plus_one_and_warns(caplog):
    from foodmtl.tasks import instances
    from foodmtl.tasks.base import PredictContext
    image = tiny_batch([True]).targets["instances"].images[0]
    spec = TaskSpec("old", "instances", ("egg", "rice"), KIND.check_options("instances", {}))
    with caplog.at_level("WARNING", logger="foodmtl"):
        found = KIND.describe(spec, detector(found_on(image, [(1, 1, 0.9)])), PredictContext())
    assert [i["category_id"] for i in found["instances"]] == [2]
    assert "old: the checkpoint records no COCO category ids" in caplog.text
    instances._WARNED.discard("old")


# ---- a real run --------------------------------------------------------------------------
def trivial_ap(dataset) -> float:
    """segm AP of a predictor that knows the most frequent class and marks the whole image as one
    instance of it, with full confidence."""
    from foodmtl.tasks.metrics.coco import coco_shape, image_truth
    truth, counts = {}, np.zeros(len(dataset.tasks[0].classes), int)
    for i in range(len(dataset)):
        target = dataset[i]["targets"]["instances"]
        truth[target.keys[0]] = image_truth(target.images[0])
        np.add.at(counts, target.images[0]["labels"].numpy(), 1)
    side = truth[next(iter(truth))]["size"]
    found = [(k, {**coco_shape(np.ones(side, np.uint8), int(counts.argmax())), "score": 1.0}) for k in truth]
    return coco_ap(truth, found, len(counts))["segm_AP"]


@pytest.mark.slow
def test_synthfood_instance_run_beats_a_trivial_predictor(synthfood_root, tmp_path):
    """4 epochs from scratch (36 steps, about a minute on 2 CPU cores) already find pieces at IoU 0.5;
    the trivial predictor finds none (its whole-image mask overlaps no piece at IoU 0.5)."""
    options = [f"task_options.instances.{k}={v}" for k, v in SMALL.items()]
    cfg = load_config(CONFIG, [f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=r",
                               "tasks=[dish,instances]", *options,
                               "model.backbone=resnet10t", "data.image_size=64", "data.batch_size=8",
                               "data.num_workers=0", "train.epochs=4", "optim.lr=0.004", "tracking.wandb=disabled"])
    run_dir, final = train(cfg)
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert summary["final"]["instances/segm_AP"] == final["instances/segm_AP"]
    assert any("eval/instances/bbox_AP75" in r for r in records)
    data = build_data(cfg.data, ["instances"])
    assert trivial_ap(data.eval) == 0.0
    assert final["instances/segm_AP50"] > 0.01 and final["instances/segm_AP"] > 0.001


@pytest.mark.parametrize("original, decoded", [((120, 200), (120, 200)), ((300, 170), (300, 170)),
                                               ((480, 800), (120, 200))])   # a JPEG decoded at 1/4 (draft)
def test_coco_results_of_predict_are_in_the_image_files_pixels(original, decoded):
    """An object at a known place in the file, seen through the eval transform (resize, centre crop)
    as the model sees it: its detection, reported with the crop's ImageView, lands back on it."""
    import albumentations as A
    from foodmtl.data.transforms import eval_transform, eval_view
    from foodmtl.tasks.base import ImageView, PredictContext
    (height, width), (h, w), size = original, decoded, 64
    rect = (0.55, 0.35, 0.75, 0.65)                                      # x0, y0, x1, y1 as fractions
    in_file = np.zeros(original, np.uint8)
    in_file[round(rect[1] * height):round(rect[3] * height), round(rect[0] * width):round(rect[2] * width)] = 1
    seen = A.Compose(eval_transform(size).transforms[:2])(image=np.zeros((h, w, 3), np.uint8),
                                                           mask=cv2.resize(in_file, (w, h), interpolation=cv2.INTER_NEAREST))
    crop_mask = torch.from_numpy(seen["mask"]).float()[None]
    found = {"boxes": masks_to_boxes(crop_mask) + torch.tensor([0.0, 0.0, 1.0, 1.0]), "labels": torch.tensor([0]),
             "scores": torch.tensor([0.9]), "masks": crop_mask}
    view = ImageView(eval_view(original, decoded, size), original)
    spec = TaskSpec("instances", "instances", ("egg",), {"category_ids": [7]})
    (result,) = KIND.describe(spec, detector(found), PredictContext(view=view))["instances"]
    x, y, bw, bh = result["bbox"]
    pixel = max(width / w, height / h) * max(h, w) / size              # one crop pixel in file pixels, at most
    expected = np.nonzero(in_file)
    assert (x, y) == pytest.approx((expected[1].min(), expected[0].min()), abs=pixel)
    assert (x + bw, y + bh) == pytest.approx((expected[1].max() + 1, expected[0].max() + 1), abs=pixel)
    rle = {"size": result["segmentation"]["size"], "counts": result["segmentation"]["counts"].encode()}
    decoded_mask = mask_utils.decode(rle)
    assert decoded_mask.shape == original
    assert (decoded_mask & in_file).sum() / (decoded_mask | in_file).sum() > 0.85  # IoU with the object in the file
