"""What a training run logs (metrics.jsonl and W&B, through the tracker): the record of a step,
of an evaluation, and the run's summary."""
from __future__ import annotations

from typing import Any

from foodmtl.engine.step import StepResult
from foodmtl.tracking.epoch_meter import EpochMeter


def step_record(result: StepResult, lr: float, epoch: int) -> dict[str, float]:
    """``train/loss`` (the unweighted sum), ``train/objective``, each ``train/loss/<task>``, ``lr``,
    ``epoch`` and each ``weight/<task>``."""
    return {"train/loss": result.total, "train/objective": result.objective,
            **{f"train/loss/{t}": v for t, v in result.losses.items()}, "lr": lr, "epoch": epoch,
            **{f"weight/{t}": w for t, w in result.weights.items()}}


def evaluation_record(metrics: dict[str, float], raw: dict[str, float], epoch: int, skipped_train: int,
                      skipped_eval: int, meter: EpochMeter | None) -> dict[str, float]:
    """``eval/...`` (the reported model), ``eval_raw/...`` (the raw weights when EMA is on), the
    skip counts and, after a trained epoch (``meter``), its mean loss and throughput."""
    record = {f"eval/{k}": v for k, v in metrics.items()}
    record.update({f"eval_raw/{k}": v for k, v in raw.items()})
    record.update({"epoch": epoch, "data/skipped_train": skipped_train, "data/skipped_eval": skipped_eval})
    if meter is not None:
        record.update({"train/epoch_loss": meter.mean_loss, "train/images_per_s": meter.images_per_s})
    return record


def summary_record(final: dict[str, float], state: Any) -> dict[str, Any]:
    """summary.json's outcome of a run (``state``: the trainer's TrainState); ``final`` is the last
    evaluation on the eval split (the trainer adds ``test``: best.pt on the test split)."""
    return {"final": final, "best": state.best, "steps": state.step, "epochs": state.epoch,
            "skipped_images": state.skipped, "nonfinite_skipped": state.nonfinite_skipped}
