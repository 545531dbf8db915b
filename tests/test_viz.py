import numpy as np
import pytest
import torch
from PIL import Image

from foodmtl.data.dataset import Batch
from foodmtl.engine.distributed import DistInfo
from foodmtl.models.backbone import Backbone
from foodmtl.models.multitask import ModelOutput, MultiTaskModel
from foodmtl.tasks import IGNORE_INDEX, TaskSpec
from foodmtl.viz.confusion import confusion_matrices, plot_confusion, row_normalised
from foodmtl.viz.embedding import embedding_maps
from foodmtl.viz.overlay import overlay_mask, palette

CLASSES = ["background", "rice", "egg", "basil"]
CPU = DistInfo(0, 1, 0, torch.device("cpu"))


def test_palette_is_voc_and_distinct():
    colours = palette(256)
    assert colours[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert len({tuple(c) for c in colours}) == 256


def test_overlay_blends_class_colours_and_leaves_ignored_pixels():
    image = np.full((20, 30, 3), 200, np.uint8)
    image[:, :, 2] = 10
    mask = np.full((20, 30), 255)
    mask[:10, :10], mask[10:, 20:] = 1, 3
    picture = np.asarray(overlay_mask(image, mask, CLASSES, alpha=0.25))
    assert picture.shape[0] >= 20 and picture.shape[1] > 30  # a legend to the right
    blended = np.round(0.75 * image[0, 0] + 0.25 * palette(4)[[1, 3]].astype(float)).astype(np.uint8)
    assert (picture[:10, :10] == blended[0]).all() and (picture[10:20, 20:30] == blended[1]).all()
    ignored = mask == 255
    assert (picture[:20, :30][ignored] == image[ignored]).all()


def test_legend_lists_only_the_classes_present():
    image = np.zeros((40, 40, 3), np.uint8)
    one, two = np.zeros((40, 40), int), np.zeros((40, 40), int)
    two[:5] = 2
    width_one, width_two = overlay_mask(image, one, CLASSES).size, overlay_mask(image, two, CLASSES).size
    legend = np.asarray(overlay_mask(image, two, CLASSES))[:, 40:]
    assert any((legend == palette(4)[2]).all(-1).ravel())       # egg's swatch
    assert not any((legend == palette(4)[1]).all(-1).ravel())   # no rice swatch
    assert width_one[1] == width_two[1] == 40
    with pytest.raises(ValueError, match="differ in size"):
        overlay_mask(image, one[:10], CLASSES)


class FixedLogits(torch.nn.Module):
    """A 'model' whose dish logits are read from the first pixel of each image."""

    def __init__(self, tasks):
        super().__init__()
        self.tasks = tasks

    def forward(self, images):
        predicted = images[:, 0, 0, 0].long()
        return ModelOutput({"dish": torch.nn.functional.one_hot(predicted, 3).float()}, images.flatten(1))


def test_confusion_matrix_matches_hand_count(tmp_path):
    task = TaskSpec("dish", "multiclass", ("pho", "ramen", "udon"))
    truth = torch.tensor([0, 0, 1, 1, 1, 2, IGNORE_INDEX])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0, 2])
    images = predicted.float()[:, None, None, None].expand(7, 3, 2, 2)
    batches = [Batch(images[:4], {"dish": truth[:4]}, ["dish"], []),
               Batch(images[4:], {"dish": truth[4:]}, ["dish"], [])]
    counts = confusion_matrices(FixedLogits([task]), batches, CPU)["dish"]
    assert counts.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 0]]
    assert row_normalised(counts)[1].tolist() == pytest.approx([0, 2 / 3, 1 / 3])
    plot_confusion(counts, task, tmp_path / "confusion_dish.png")
    assert Image.open(tmp_path / "confusion_dish.png").size[0] > 100


def test_embed_writes_a_map_per_task(tmp_path):
    tasks = [TaskSpec("dish", "multiclass", tuple("abcd")), TaskSpec("cuisine", "multiclass", ("x", "y"))]
    model = MultiTaskModel(Backbone("resnet10t"), tasks)
    gen = torch.Generator().manual_seed(0)
    batches = [Batch(torch.randn(8, 3, 32, 32, generator=gen),
                     {"dish": torch.randint(0, 4, (8,), generator=gen), "cuisine": torch.tensor([0, 1] * 3 + [-1] * 2)},
                     ["dish", "cuisine"], []) for _ in range(2)]
    paths = embedding_maps(model, batches, torch.device("cpu"), tmp_path)
    assert paths == [tmp_path / "tsne_dish.png", tmp_path / "tsne_cuisine.png"]
    assert all(Image.open(p).size[0] > 100 for p in paths)
