"""Pictures, checked on their content: palette distances in CIELAB, overlay pixels and layout,
confusion-matrix figures and pairs against hand counts, t-SNE titles and colours."""
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchmetrics.classification import MulticlassAccuracy

from foodmtl.data.dataset import Batch
from foodmtl.engine.distributed import DistInfo
from foodmtl.models.backbone import Backbone
from foodmtl.models.multitask import ModelOutput, MultiTaskModel
from foodmtl.tasks import IGNORE_INDEX, TaskSpec
from foodmtl.analysis.confusion import (MAX_CELL_COUNTS, confused_pairs, confusion_figure, confusion_matrices,
                                   confusion_plots, label_step, row_normalised)
from foodmtl.analysis.embedding import embedding_maps, scatter
from foodmtl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform
from foodmtl.viz.overlay import (ALPHA, GREY, OUTLINE, PANEL_MAX, PANEL_MIN, comparison_figure, denormalised,
                                 display_size, enlarged, legend_entries, prediction_figure, stripes, tinted)
from foodmtl.viz.palette import as_float, class_colours, mask_colours

CLASSES = ["background", "rice", "egg", "basil", "olive"]
CPU = DistInfo(0, 1, 0, torch.device("cpu"))


# ---- palette ---------------------------------------------------------------------------

def srgb_to_lab(rgb) -> np.ndarray:
    """CIE L*a*b* (D65) of 8-bit sRGB colours: the sRGB and CIE 1976 formulas."""
    c = np.asarray(rgb, np.float64) / 255
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    to_xyz = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def min_distance(colours) -> float:
    """Smallest CIE76 colour difference (Delta E) between two of ``colours``."""
    lab = srgb_to_lab(colours)
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def voc_palette(n: int) -> np.ndarray:
    """PASCAL VOC's bit-pattern palette, the one the overlays used before (the counter-example)."""
    ids, colours = np.arange(n), np.zeros((n, 3), np.int64)
    for bit in range(8):
        for channel in range(3):
            colours[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
    return colours


def test_lab_conversion_matches_published_values():
    # sRGB red and blue under D65, as tabulated by e.g. Lindbloom's and colormine's converters
    assert srgb_to_lab([255, 0, 0]) == pytest.approx([53.24, 80.09, 67.20], abs=0.01)
    assert srgb_to_lab([0, 0, 255]) == pytest.approx([32.30, 79.19, -107.86], abs=0.01)
    assert srgb_to_lab([255, 255, 255]) == pytest.approx([100, 0, 0], abs=1e-3)


def test_palette_classes_are_far_apart_in_lab_where_voc_was_not():
    glasbey = class_colours(256)
    assert len({tuple(c) for c in glasbey}) == 256
    # every pair of the 256 colours: Delta E >= 8 (VOC: 1.3); any 20 first classes >= 20 (VOC: 8.8)
    assert min_distance(glasbey) >= 8 > min_distance(voc_palette(257)[1:])
    assert min_distance(glasbey[:20]) >= 20 > min_distance(voc_palette(21)[1:])
    assert (class_colours(300)[256:] == glasbey[:44]).all()  # past 256 the table repeats


def test_mask_neighbours_stay_apart_once_tinted_over_a_plate():
    """VOC's basil (0,128,0) and olive (128,128,0) were ids 2 and 3; tinted at ALPHA over a light
    plate every pair of the first 20 food classes must stay distinguishable."""
    plate = np.array([200.0, 200.0, 200.0])

    def on_plate(colours):
        return (1 - ALPHA) * plate + ALPHA * np.asarray(colours, np.float64)

    ours, voc = mask_colours(21)[1:], voc_palette(21)[1:]
    assert min_distance(on_plate(ours)) >= 12 > min_distance(on_plate(voc))
    assert min_distance(on_plate(mask_colours(4)[2:4])) >= 40 > min_distance(on_plate(voc_palette(4)[2:4]))
    assert (mask_colours(5)[1:] == class_colours(4)).all()  # id 0 is background: food starts at colour 0
    assert as_float(class_colours(1)).max() <= 1.0


# ---- overlays --------------------------------------------------------------------------

def test_tint_blends_food_outlines_it_and_leaves_background_and_hatches_unlabelled():
    image = np.full((16, 16, 3), 100, np.uint8)
    image[..., 2] = 30
    mask = np.zeros((16, 16), np.int64)
    mask[4:12, 4:12] = 2
    mask[14:] = 255
    colours = mask_colours(len(CLASSES))
    out = tinted(image, mask, colours, 255)
    blend = np.round((1 - ALPHA) * image[0, 0] + ALPHA * colours[2].astype(float)).astype(np.uint8)
    assert (out[4 + OUTLINE:12 - OUTLINE, 4 + OUTLINE:12 - OUTLINE] == blend).all()   # inside
    assert (out[4, 4:12] == colours[2]).all() and (out[4:12, 4 + OUTLINE - 1] == colours[2]).all()  # outline
    assert (out[:4] == image[:4]).all() and (out[4:12, :4] == image[4:12, :4]).all()  # background untouched
    hatch = stripes((16, 16))[14:]
    assert (out[14:][hatch] == GREY).all()
    assert (out[14:][~hatch] == np.round((image[0, 0].astype(float) + 255) / 2).astype(np.uint8)).all()
    with pytest.raises(ValueError, match="class id 7"):
        tinted(image, np.full((16, 16), 7), colours, 255)


def test_small_inputs_are_enlarged_by_a_whole_factor_and_masks_stay_sharp():
    assert display_size(64, 48) == (256, 192)        # x4
    assert display_size(96, 96) == (288, 288)        # x3
    assert display_size(300, 200) == (300, 200)
    assert max(display_size(1024, 768)) == PANEL_MAX
    mask = np.random.default_rng(0).integers(0, 5, (64, 48))
    image = np.zeros((64, 48, 3), np.uint8)
    big, (big_mask,) = enlarged(image, [mask])
    assert big.shape == (256, 192, 3)
    assert (big_mask == np.kron(mask, np.ones((4, 4), np.int64))).all()  # nearest: whole 4x4 blocks


def find(picture: np.ndarray, panel: np.ndarray) -> list[tuple[int, int]]:
    """Top-left corners where ``panel`` appears in ``picture`` pixel for pixel."""
    h, w = panel.shape[:2]
    corners = np.argwhere((picture[: picture.shape[0] - h + 1, : picture.shape[1] - w + 1] == panel[0, 0]).all(-1))
    return [(int(y), int(x)) for y, x in corners if (picture[y:y + h, x:x + w] == panel).all()]


def masks_64():
    truth = np.zeros((64, 64), np.int64)
    truth[8:30, 8:30], truth[34:60, 20:50], truth[:, 62:] = 1, 2, 255
    predicted = truth.copy()
    predicted[predicted == 255] = 0
    predicted[34:60, 20:50] = 4                       # egg predicted as olive
    return truth, predicted


def test_comparison_figure_shows_image_truth_and_prediction_side_by_side_at_a_useful_size():
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    truth, predicted = masks_64()
    picture = np.asarray(comparison_figure(image, truth, predicted, CLASSES, 255))
    big, (t, p) = enlarged(image, [truth, predicted])
    colours = mask_colours(len(CLASSES))
    expected = [big, tinted(big, t, colours, 255), tinted(big, p, colours, 255)]
    corners = [find(picture, panel) for panel in expected]
    assert all(len(c) == 1 for c in corners), corners
    (y0, x0), (y1, x1), (y2, x2) = (c[0] for c in corners)
    assert y0 == y1 == y2 > 0 and x0 < x1 < x2                                      # one row, titles above
    assert big.shape[0] >= PANEL_MIN and x1 - x0 >= big.shape[1]
    for x in (x0, x1, x2):                                                          # a dark title over each
        assert (picture[:y0, x:x + big.shape[1]] < 100).all(-1).any()
    below = picture[y0 + big.shape[0]:]                                             # one legend, below
    for k, present in [(1, True), (2, True), (4, True), (3, False)]:
        assert (below == colours[k]).all(-1).any() == present, CLASSES[k]


def test_legend_lists_each_class_once_and_says_which_panel_has_it():
    truth, predicted = masks_64()
    labels = [e.label for e in legend_entries(CLASSES, {"ground truth": truth, "prediction": predicted}, 255)]
    assert labels == ["rice", "egg (only in ground truth)", "olive (only in prediction)",
                      "background (untinted)", "not labelled"]
    colours = [e.colour for e in legend_entries(CLASSES, {"prediction": predicted}, None)]
    assert colours == [tuple(mask_colours(5)[1]), tuple(mask_colours(5)[4]), None]


def test_prediction_figure_has_two_panels_and_rejects_a_mask_of_another_size():
    image = np.random.default_rng(2).integers(0, 256, (128, 96, 3), dtype=np.uint8)
    _, predicted = masks_64()
    predicted = np.kron(predicted, np.ones((2, 2), np.int64))[:, :96]
    figure = prediction_figure(image, predicted, CLASSES)
    big, (p,) = enlarged(image, [predicted])
    picture = np.asarray(figure)
    assert len(find(picture, big)) == 1 and len(find(picture, tinted(big, p, mask_colours(5), None))) == 1
    assert figure.width < 3 * big.shape[1]
    with pytest.raises(ValueError, match="differ in size"):
        comparison_figure(image, predicted[:10], predicted, CLASSES, 255)


def test_denormalised_gives_back_the_pixels_the_eval_transform_normalised():
    """A 64 px image is not resized by the 56 px eval transform, only centre-cropped, so what the
    model saw is the crop's own pixels: every value 0..255 of every channel comes back exactly."""
    image = np.stack([np.roll(np.arange(64 * 64) % 256, 85 * c).reshape(64, 64) for c in range(3)], -1)
    image = image.astype(np.uint8)
    tensor = eval_transform(56)(image=image)["image"]
    assert np.array_equal(denormalised(tensor.numpy(), IMAGENET_MEAN, IMAGENET_STD), image[4:60, 4:60])


def test_denormalised_rounds_to_the_nearest_value_and_clips_what_is_out_of_range():
    """By hand: 0 is the mean, 255 * (0.485, 0.456, 0.406) = (123.675, 116.28, 103.53) -> (124, 116, 104);
    +-3 standard deviations lie past 1 and below 0 for every channel."""
    normalised = np.zeros((3, 1, 3), np.float32)
    normalised[:, 0, 1], normalised[:, 0, 2] = 3, -3
    assert denormalised(normalised, IMAGENET_MEAN, IMAGENET_STD).tolist() == [
        [[124, 116, 104], [255, 255, 255], [0, 0, 0]]]


# ---- confusion matrices -------------------------------------------------------------------

class FixedLogits(torch.nn.Module):
    """A 'model' whose dish logits are read from the first pixel of each image."""

    def __init__(self, tasks):
        super().__init__()
        self.tasks = tasks

    def forward(self, images):
        predicted = images[:, 0, 0, 0].long()
        return ModelOutput({"dish": torch.nn.functional.one_hot(predicted, 3).float()}, images.flatten(1))


DISH = TaskSpec("dish", "multiclass", ("pho", "ramen", "udon"))
TRUTH = torch.tensor([0, 0, 1, 1, 1, 2, IGNORE_INDEX])
PREDICTED = torch.tensor([0, 1, 1, 1, 2, 0, 2])


def hand_batches():
    images = PREDICTED.float()[:, None, None, None].expand(7, 3, 2, 2)
    return [Batch(images[:4], {"dish": TRUTH[:4]}, ["dish"], []), Batch(images[4:], {"dish": TRUTH[4:]}, ["dish"], [])]


def test_confusion_matrix_matches_hand_count_and_its_figure_says_n_and_accuracy():
    counts = confusion_matrices(FixedLogits([DISH]), hand_batches(), CPU)["dish"]
    assert counts.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 0]]
    assert row_normalised(counts)[1].tolist() == pytest.approx([0, 2 / 3, 1 / 3])
    ax = confusion_figure(counts, DISH).axes[0]
    accuracy = MulticlassAccuracy(3, average="micro", ignore_index=IGNORE_INDEX)(PREDICTED, TRUTH)
    assert f"N = 6 labelled samples, top-1 accuracy {float(accuracy):.1%}" in ax.get_title()  # 50.0 %
    assert [t.get_text() for t in ax.get_xticklabels()] == list(DISH.classes)
    assert sorted(t.get_text() for t in ax.texts) == ["1", "1", "1", "1", "2"]  # the non-zero cells


def test_confused_pairs_rank_off_diagonal_counts_with_their_row_fraction():
    counts = torch.tensor([[5, 3, 0, 2],
                           [1, 9, 0, 0],
                           [0, 3, 1, 0],
                           [0, 0, 0, 4]])
    pairs = confused_pairs(counts, ("a", "b", "c", "d"), k=3)
    # (a->b) 3 of 10 and (c->b) 3 of 4 tie on count: the larger fraction first; then (a->d) 2 of 10
    assert pairs.to_dict("list") == {"true": ["c", "a", "a"], "predicted": ["b", "b", "d"], "count": [3, 3, 2],
                                     "fraction_of_true": pytest.approx([0.75, 0.3, 0.2])}
    assert len(confused_pairs(counts, "abcd", k=10)) == 4                  # (b->a) is the fourth; no diagonal
    assert confused_pairs(torch.eye(3, dtype=torch.long), "abc").empty


def test_many_classes_keep_their_names_and_drop_the_cell_counts():
    rng = np.random.default_rng(0)
    for n in (101, 300):
        counts = torch.tensor(rng.poisson(0.5, (n, n)) + np.eye(n, dtype=np.int64) * 5)
        task = TaskSpec("dish", "multiclass", tuple(f"class {i}" for i in range(n)))
        ax = confusion_figure(counts, task).axes[0]
        names = [t.get_text() for t in ax.get_yticklabels()]
        step = label_step(n)
        assert names == [f"class {i}" for i in range(0, n, step)]
        assert (step == 1) == (n == 101) and (f"one class in {step} named" in ax.get_xlabel()) == (step > 1)
        assert not ax.texts and n > MAX_CELL_COUNTS


def test_confusion_plots_write_heat_map_pairs_csv_and_table(tmp_path):
    paths = confusion_plots(FixedLogits([DISH]), hand_batches(), CPU, tmp_path / "plots")
    assert [p.name for p in paths] == ["confusion_dish.png", "confused_pairs_dish.csv", "confused_pairs_dish.png"]
    table = pd.read_csv(paths[1])
    assert table.values.tolist() == [["udon", "pho", 1, 1.0], ["pho", "ramen", 1, 0.5],
                                     ["ramen", "udon", 1, pytest.approx(1 / 3)]]
    assert all(Image.open(p).size[0] > 300 for p in (paths[0], paths[2]))


# ---- t-SNE ----------------------------------------------------------------------------------

def test_tsne_title_names_split_n_and_checkpoint_and_colours_are_glasbey():
    points = np.random.default_rng(0).normal(size=(30, 2))
    labels = np.arange(30) % 12
    labels[:2] = IGNORE_INDEX
    task = TaskSpec("dish", "multiclass", tuple(f"d{i}" for i in range(12)))
    ax = scatter(points, labels, task, "eval split, N = 30 samples, checkpoint best.pt").axes[0]
    assert "eval split, N = 30 samples, checkpoint best.pt" in ax.get_title()
    coloured = ax.collections[1:]                     # the first holds the unlabelled samples
    assert [c.get_label() for c in coloured] == list(task.classes)
    assert np.allclose([c.get_facecolor()[0][:3] for c in coloured], as_float(class_colours(12)))


def test_embed_writes_a_map_per_task(tmp_path):
    tasks = [TaskSpec("dish", "multiclass", tuple("abcd")), TaskSpec("cuisine", "multiclass", ("x", "y"))]
    model = MultiTaskModel(Backbone("resnet10t"), tasks)
    gen = torch.Generator().manual_seed(0)
    batches = [Batch(torch.randn(8, 3, 32, 32, generator=gen),
                     {"dish": torch.randint(0, 4, (8,), generator=gen), "cuisine": torch.tensor([0, 1] * 3 + [-1] * 2)},
                     ["dish", "cuisine"], []) for _ in range(2)]
    paths = embedding_maps(model, batches, torch.device("cpu"), tmp_path, "eval", "best.pt")
    assert paths == [tmp_path / "tsne_dish.png", tmp_path / "tsne_cuisine.png"]
    assert all(Image.open(p).size[0] > 100 for p in paths)


def test_eval_plots_into_a_file_fails_before_evaluating(tmp_path, capsys):
    from foodmtl.cli import main

    taken = tmp_path / "plots"
    taken.write_text("not a folder")
    assert main(["eval", str(tmp_path / "no-checkpoint.pt"), "--plots", str(taken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --plots {taken} is a file; name a folder for the confusion plots"]
