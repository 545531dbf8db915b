"""Per-image ingredient labels read from segmentation masks (task_options.ingredients.from_masks)."""
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from foodmtl.errors import ConfigError
from foodmtl.data.builder import build_tasks
from foodmtl.data.dataset import FoodDataset, collate
from foodmtl.data.table import SampleTable, empty_columns
from foodmtl.data.transforms import eval_transform

VOCAB = {"ingredients": ["rice", "egg"], "segmentation": ["background", "tomato", "basil", "rice"]}


@pytest.fixture
def table(tmp_path):
    rows = []
    mask = np.zeros((40, 40), np.uint8)
    mask[:20] = 1                  # tomato: 50 % of the pixels
    mask[20:38, :20] = 3           # rice: 22.5 %
    mask[38:, :] = 2               # basil: 5 %
    mask[20:38, 20:] = 255  # unlabelled pixels (the 8-bit file's ignore value) count nowhere
    for name, with_mask, listed in (("a", True, ("egg",)), ("b", False, ("rice", "egg")), ("c", False, None)):
        image = tmp_path / f"{name}.png"
        Image.fromarray(np.full((40, 40, 3), 100, np.uint8)).save(image)
        mask_path = None
        if with_mask:
            mask_path = str(tmp_path / f"{name}_mask.png")
            Image.fromarray(mask).save(mask_path)
        rows.append({"image": str(image), "split": "train", "source": "x", "ingredients": listed, "mask": mask_path})
    return SampleTable(empty_columns(pd.DataFrame(rows)), VOCAB)


def targets(table, options):
    (spec,) = build_tasks(["ingredients"], VOCAB, {"ingredients": options})
    dataset = FoodDataset(table, [spec], eval_transform(32))
    return spec, collate([dataset[i] for i in range(len(dataset))]).targets["ingredients"]


def test_mask_classes_join_the_ingredient_vocabulary_by_name(table):
    spec, target = targets(table, {"from_masks": True})
    assert spec.classes == ("rice", "egg", "tomato", "basil")
    assert spec.options["mask_map"] == [-1, 2, 3, 0]
    # a: from its mask (tomato, basil, rice), not its listed label; b: listed; c: unlabelled
    assert target.tolist() == [[1, 0, 1, 1], [1, 1, 0, 0], [-1, -1, -1, -1]]


def test_min_fraction_drops_classes_covering_less_of_the_labelled_pixels(table):
    _, target = targets(table, {"from_masks": True, "min_fraction": 0.06})
    # labelled pixels: 1600 - 18*20 = 1240; basil 80/1240 = 6.5 % stays, at 0.1 it goes
    assert target[0].tolist() == [1, 0, 1, 1]
    _, target = targets(table, {"from_masks": True, "min_fraction": 0.1})
    assert target[0].tolist() == [1, 0, 1, 0]


def test_without_the_option_listed_labels_are_kept(table):
    spec, target = targets(table, {})
    assert spec.classes == ("rice", "egg")
    assert target.tolist() == [[0, 1], [1, 1], [-1, -1]]


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="min_fraction=1.5 must lie in"):
        build_tasks(["ingredients"], VOCAB, {"ingredients": {"from_masks": True, "min_fraction": 1.5}})
    with pytest.raises(ConfigError, match="unknown option"):
        build_tasks(["ingredients"], VOCAB, {"ingredients": {"mask_map": [0]}})
