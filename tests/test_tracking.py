import json

from foodmtl.tracking import Tracker
from foodmtl.tracking.local import read_jsonl
from foodmtl.tracking.wandb_run import WandbWriter, resolve_mode, summary_ops, unsent


def test_auto_mode_is_offline_without_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto") == "online"


def test_failed_online_init_falls_back_to_offline(monkeypatch, tmp_path):
    calls = []

    def fake_init(mode, kwargs):
        calls.append(mode)
        return None if mode == "online" else "run"

    monkeypatch.setattr(WandbWriter, "_init", staticmethod(fake_init))
    monkeypatch.setattr(WandbWriter, "_reachable", lambda self: True)
    monkeypatch.setattr(WandbWriter, "_define_axes", lambda self: None)
    writer = WandbWriter("online", tmp_path, "r", {}, "p")
    assert calls == ["online", "offline"] and writer.run == "run"


def test_wandb_error_disables_wandb_without_raising(tmp_path):
    class Broken:
        def log(self, record):
            raise ConnectionError("network down")

    writer = WandbWriter("disabled", tmp_path, "r", {}, "p")
    writer.run = Broken()
    writer.log({"a": 1})
    assert writer.run is None


def test_tracker_writes_jsonl_summary_and_an_offline_wandb_run(tmp_path):
    wandb = WandbWriter("offline", tmp_path, "run", {"lr": 0.1}, "foodmtl-test")
    tracker = Tracker(tmp_path, wandb)
    tracker.log({"train/loss": 1.5}, step=1)
    tracker.log({"train/loss": float("nan")}, step=2)
    tracker.summary({"best": 0.5})
    tracker.finish()
    assert read_jsonl(tmp_path / "metrics.jsonl") == [{"step": 1, "train/loss": 1.5}, {"step": 2, "train/loss": None}]
    assert json.loads((tmp_path / "summary.json").read_text()) == {"best": 0.5}
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))


def test_replay_reads_the_last_value_of_a_metric_whose_summary_is_its_best_and_last():
    records = [{"step": 1, "train/loss": 2.0}, {"step": 2, "train/loss": 1.0}, {"step": 2, "eval/dish/top1": 0.4},
               {"step": 3, "train/loss": 0.5}]
    # eval/dish/top1 was defined with summary="max,last" (its best, 0.5, came from an earlier step)
    summary = {"step": 2, "train/loss": 1.0, "eval/dish/top1": {"max": 0.5, "last": 0.4}}
    assert unsent(records, summary) == records[3:]
    summary["eval/dish/top1"] = {"max": 0.5, "last": 0.5}  # W&B lacks step 2's evaluation
    assert unsent(records, summary) == records[2:]
    assert summary_ops("eval/dish/top1") == "max,last" and summary_ops("eval_raw/dish/loss") == "min,last"
    assert summary_ops("train/loss") is None
