"""EMA of the weights (timm ModelEmaV3): the average by hand, what a run reports and saves, DDP."""
import json
from pathlib import Path

import pytest
import torch

from foodmtl.cli import main
from foodmtl.config import load_config
from foodmtl.engine.checkpoint import load_checkpoint
from foodmtl.engine.ema import model_state
from foodmtl.engine.trainer import Trainer
from foodmtl.tracking.local import read_jsonl

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
BN_STATS = {"running_mean", "running_var", "num_batches_tracked"}


def config(root, out, *extra):
    return load_config(TINY, [f"data.root={root}", f"output_dir={out}", "tracking.wandb=disabled", *extra])


def test_ema_is_the_decayed_average_of_the_weights_after_each_step(synthfood_root, tmp_path):
    """decay 0.5: e1 = w1 (timm's first update copies), e_t = 0.5 e_(t-1) + 0.5 w_t; integer buffers
    (num_batches_tracked) are copied."""
    trainer = Trainer(config(synthfood_root, tmp_path, "train.ema_decay=0.5", "train.max_steps=3", "train.epochs=1"))
    weights, update = [], trainer.ema.update

    def record(model, step):
        weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        update(model, step=step)

    trainer.ema.update = record
    trainer.fit()
    assert len(weights) == 3
    expected = dict(weights[0])
    for w in weights[1:]:
        expected = {k: 0.5 * expected[k] + 0.5 * v if v.is_floating_point() else v for k, v in w.items()}
    averaged = trainer.ema.module.state_dict()
    assert not torch.equal(averaged["heads.dish.fc.weight"], weights[-1]["heads.dish.fc.weight"])
    for key, value in expected.items():
        torch.testing.assert_close(averaged[key], value, rtol=1e-6, atol=1e-7, msg=key)


@pytest.fixture(scope="module")
def ema_run(synthfood_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("ema")
    trainer = Trainer(config(synthfood_root, out, "train.ema_decay=0.9", "train.epochs=2", "run=ema"))
    trainer.fit()
    return trainer


def test_a_run_with_ema_reports_and_saves_the_ema_model_and_logs_the_raw_one(ema_run, tmp_path):
    run = ema_run.run_dir
    records = [r for r in read_jsonl(run / "metrics.jsonl") if "eval/dish/top1" in r]
    assert len(records) == 2 and all("eval_raw/dish/top1" in r for r in records)
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    ema, raw = model_state(last["objective"]), model_state(last["train_objective"])
    assert all(torch.equal(v, ema_run.ema.module.state_dict()[k]) for k, v in ema.items())
    assert all(torch.equal(v, ema_run.objective.model.state_dict()[k]) for k, v in raw.items())
    assert not torch.equal(ema["heads.dish.fc.weight"], raw["heads.dish.fc.weight"])
    assert main(["eval", str(run / "checkpoints" / "last.pt"), "--cpu", "--json", str(tmp_path / "last.json")]) == 0
    assert json.loads((run / "summary.json").read_text())["final"] == json.loads((tmp_path / "last.json").read_text())
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    scored = next(r for r in records if r["step"] == best["step"])
    assert best["metrics"] == {k.removeprefix("eval/"): v for k, v in scored.items() if k.startswith("eval/")}
    assert "train_objective" not in best  # weights only: the EMA's


def test_frozen_weights_stay_bit_identical_in_the_ema(synthfood_root, tmp_path):
    trainer = Trainer(config(synthfood_root, tmp_path, "train.ema_decay=0.7", "model.freeze=backbone",
                             "train.max_steps=3", "train.epochs=1"))
    before = {k: v.clone() for k, v in trainer.objective.model.backbone.state_dict().items()}
    trainer.fit()
    after = trainer.ema.module.backbone.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_under_ddp_the_ema_is_identical_across_ranks_and_reports_what_it_saves(synthfood_root, tmp_path):
    """2 ranks with a frozen backbone joining at epoch 2 (DDP is wrapped again then) and EMA."""
    from test_distributed import torchrun

    torchrun(str(ROOT / "tests" / "ddp_ema_worker.py"), str(TINY), str(tmp_path), f"data.root={synthfood_root}",
             f"output_dir={tmp_path}/runs", "run=ddp", "train.epochs=2", "train.ema_decay=0.8",
             "model.freeze=stages:1", "train.unfreeze_at=1", "tracking.wandb=disabled", "data.limit=40")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["unfrozen"] and ranks[1]["unfrozen"]
    for part in ("objective", "ema"):
        for key, value in ranks[0][part].items():
            if key.rsplit(".", 1)[-1] not in BN_STATS:  # rank-local; evaluation uses rank 0's
                assert torch.equal(value, ranks[1][part][key]), (part, key)
    for pid, state in ranks[0]["optimizer"]["state"].items():
        assert all(torch.equal(v, ranks[1]["optimizer"]["state"][pid][k]) for k, v in state.items())
    run = tmp_path / "runs" / "synthfood-tiny" / "ddp"
    evals = {r["step"]: {k.removeprefix("eval/"): v for k, v in r.items() if k.startswith("eval/")}
             for r in read_jsonl(run / "metrics.jsonl") if "eval/dish/top1" in r}
    last = load_checkpoint(run / "checkpoints" / "last.pt")["train_state"]["step"]
    best = load_checkpoint(run / "checkpoints" / "best.pt")["step"]
    assert json.loads((run / "summary.json").read_text())["final"] == evals[last]
    for name, step in (("last.pt", last), ("best.pt", best)):  # 1 process, as the 2 ranks (losses: sum order)
        assert main(["eval", str(run / "checkpoints" / name), "--cpu", "--json", str(tmp_path / "m.json")]) == 0
        assert json.loads((tmp_path / "m.json").read_text()) == pytest.approx(evals[step], rel=1e-6)
