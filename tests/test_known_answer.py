"""The known-answer case of the weighting benchmark, tiny: a raw-unit squared-error regression
(calories in kcal, loss ~10^4) next to a classification (loss ~1). Uniform weighting lets the
regression take the shared backbone and the dish is barely learnt; FAMO, which weighs log-losses
and so is blind to a task's units, learns it. Measured on the training split (78 images, none set
aside for validation; the test split of this tiny set has 18): uniform 0.37 / 0.41, FAMO 0.85 / 0.79
top-1 for seeds 0 / 1, so a 0.25 margin is far outside seed noise."""
from pathlib import Path

import pytest

from foodmtl.config import load_config
from foodmtl.engine.trainer import train

TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"


@pytest.mark.slow
def test_uniform_lets_a_raw_unit_loss_dominate_and_famo_recovers_the_dish(tmp_path_factory):
    from foodmtl.synthfood.generate import generate_synthfood

    root = generate_synthfood(tmp_path_factory.mktemp("ka") / "sf", dishes=6, per_dish=16, size=64, seed=0,
                              val_fraction=0)
    top1 = {}
    for method in ("uniform", "famo"):
        cfg = load_config(TINY, [f"data.root={root}", f"output_dir={tmp_path_factory.mktemp('runs')}",
                                 f"weighting.name={method}", "tasks=[dish,calories]",
                                 "task_options={calories: {standardize: false, loss: mse}}", "train.epochs=3",
                                 "data.eval_split=train", "data.test_split=null", "tracking.wandb=disabled"])
        _, final = train(cfg)
        top1[method] = final["dish/top1"]
    assert top1["famo"] - top1["uniform"] > 0.25, top1
