import json
from pathlib import Path

import pytest
import torch

from foodmtl.engine.checkpoint import (CheckpointError, load_checkpoint, require_resumable, save_checkpoint,
                                       weights_only)


def test_round_trip_with_weights_only(tmp_path):
    state = {"objective": {"w": torch.ones(2)}, "config": {"train": {"epochs": 1}}, "tasks": [{"name": "dish"}]}
    save_checkpoint(state, tmp_path / "last.pt")
    loaded = load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(loaded["objective"]["w"], torch.ones(2))
    assert list(tmp_path.iterdir()) == [tmp_path / "last.pt"]  # no temp file left behind


def test_pickled_code_is_refused(tmp_path):
    torch.save({"objective": {}, "config": {}, "fn": torch.nn.Linear(1, 1)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")


def test_truncated_file_names_the_path(tmp_path):
    save_checkpoint({"objective": {"w": torch.randn(1000)}, "config": {}}, tmp_path / "last.pt")
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(tmp_path / "last.pt")


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(CheckpointError, match="foodmtl train"):
        load_checkpoint(tmp_path / "nope.pt")


def trained_snapshot() -> dict:
    """A full checkpoint as the trainer writes it, after one AdamW step (so the moments exist)."""
    model = torch.nn.Linear(128, 128)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 128)).sum().backward()
    optimizer.step()
    return {"objective": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": {}, "scaler": {},
            "train_state": {"step": 7, "epoch": 2}, "rng": {"torch": torch.get_rng_state()},
            "config": {"train": {"epochs": 3}}, "tasks": [{"name": "dish"}], "wandb_id": "abc"}


def test_best_is_the_weights_with_config_tasks_and_metrics_and_a_third_of_last(tmp_path):
    snapshot = trained_snapshot()
    save_checkpoint(snapshot, tmp_path / "last.pt")
    save_checkpoint(weights_only(snapshot, {"dish/top1": 0.5}), tmp_path / "best.pt")
    best = load_checkpoint(tmp_path / "best.pt")
    assert all(torch.equal(best["objective"][k], v) for k, v in snapshot["objective"].items())
    assert (best["config"], best["tasks"], best["step"], best["epoch"], best["metrics"]) == (
        snapshot["config"], snapshot["tasks"], 7, 2, {"dish/top1": 0.5})
    assert "optimizer" not in best and "rng" not in best
    torch.save(snapshot["objective"], tmp_path / "weights.pt")  # reference: the weights alone
    weights = (tmp_path / "weights.pt").stat().st_size
    assert (tmp_path / "best.pt").stat().st_size < weights + 4096
    assert (tmp_path / "last.pt").stat().st_size > 3 * weights  # + AdamW's two moments and the RNG state


def test_resuming_needs_a_full_checkpoint_and_says_what_best_lacks(tmp_path):
    snapshot = trained_snapshot()
    require_resumable(snapshot, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"best.pt holds weights only \(no optimizer, .*last.pt"):
        require_resumable(weights_only(snapshot, {}), tmp_path / "best.pt")


V1 = json.loads((Path(__file__).parent / "fixtures" / "v1_checkpoint_layout.json").read_text())
ENTRIES = {"objective", "optimizer", "scheduler", "scaler", "train_state", "rng", "config", "tasks", "wandb_id",
           "init_from"}


@pytest.mark.parametrize("ema, extra", [("0", set()), ("0.9", {"train_objective"})], ids=["raw", "ema"])
def test_the_parts_a_trainer_collects_make_the_entries_every_checkpoint_had(synthfood_root, tmp_path, ema, extra):
    """A full checkpoint's entries, as before the trainer was split into parts (engine/snapshot.py),
    and v1's train_state fields (tests/fixtures/v1_checkpoint_layout.json) plus ``unfrozen``."""
    from foodmtl.config import load_config
    from foodmtl.engine.trainer import Trainer

    tiny = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"
    trainer = Trainer(load_config(tiny, [f"data.root={synthfood_root}", f"output_dir={tmp_path}",
                                         "tracking.wandb=disabled", f"train.ema_decay={ema}"]))
    snapshot = trainer._snapshot()
    assert set(snapshot) == ENTRIES | extra
    assert set(snapshot["train_state"]) == set(V1["train_state"]) | {"unfrozen"}
    assert set(snapshot["objective"]) == set(trainer.objective.state_dict())
