"""W&B tells the truth: WANDB_MODE is obeyed, an unreachable server means offline at once, the
exit code is the real one, and a resumed run's W&B history is metrics.jsonl's."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import wandb_records
from foodmtl.cli import main
from foodmtl.config import load_config
from foodmtl.errors import ConfigError
from foodmtl.engine.checkpoint import CheckpointError, load_checkpoint
from foodmtl.engine.step import NonFiniteLossError
from foodmtl.engine.trainer import train
from foodmtl.tracking import Tracker
from foodmtl.tracking.local import read_jsonl
from foodmtl.tracking.wandb_run import WandbWriter, resolve_mode, server_reachable, unsent

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
PROXIES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture
def credentials(monkeypatch, tmp_path):
    """An API key (so `auto` would go online), no WANDB_MODE, no proxy."""
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


@pytest.mark.parametrize("env, expected", [("offline", "offline"), ("disabled", "disabled"), ("online", "online"),
                                           ("dryrun", "offline")])
def test_wandb_mode_wins_over_auto(credentials, monkeypatch, env, expected):
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", env)
    assert resolve_mode("auto") == expected
    assert resolve_mode("offline") == "offline"  # the config's explicit choice stays


@pytest.mark.parametrize("env", ["", "offlin"])
def test_a_wandb_mode_wandb_would_reject_is_a_config_error(monkeypatch, env):
    monkeypatch.setenv("WANDB_MODE", env)
    with pytest.raises(ConfigError, match="WANDB_MODE"):
        resolve_mode("offline")


def test_wandb_mode_disabled_writes_no_run(credentials, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    writer = WandbWriter("auto", tmp_path, "r", {}, "p")
    assert writer.run is None and not (tmp_path / "wandb").exists()


def test_wandb_mode_offline_with_an_api_key_never_goes_online(credentials, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    writer = WandbWriter("auto", tmp_path, "r", {}, "p")
    writer.finish()
    assert [p.name.split("-")[0] for p in (tmp_path / "wandb").glob("*run-*")] == ["offline"]


def test_server_reachable_probes_the_server_or_its_proxy(monkeypatch):
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)
    with socket.create_server(("127.0.0.1", 0)) as server:
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        assert server_reachable(url)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port()}")
        assert not server_reachable(url)  # the proxy is what the connection would go through
    monkeypatch.delenv("http_proxy")
    assert not server_reachable(f"http://127.0.0.1:{closed_port()}")


def test_refused_server_falls_back_to_offline_with_one_run_folder(credentials, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    writer = WandbWriter("auto", tmp_path, "r", {}, "p")
    assert writer.run is not None and writer.run.offline
    writer.finish()
    assert [p.name.split("-")[0] for p in (tmp_path / "wandb").glob("*run-*")] == ["offline"]
    assert "not reachable; logging offline" in caplog.text


def test_failed_online_init_leaves_no_run_folder(credentials, monkeypatch, tmp_path):
    def fake_init(mode, kwargs):
        if mode == "online":  # what wandb.init leaves behind when it gives up
            (Path(kwargs["dir"]) / "wandb" / f"run-20260101_000000-{kwargs['id']}" / "files").mkdir(parents=True)
            return None
        return real_init(mode, kwargs)

    real_init = WandbWriter._init
    monkeypatch.setattr(WandbWriter, "_reachable", lambda self: True)
    monkeypatch.setattr(WandbWriter, "_init", staticmethod(fake_init))
    writer = WandbWriter("online", tmp_path, "r", {}, "p")
    writer.finish()
    assert [p.name.split("-")[0] for p in (tmp_path / "wandb").glob("*run-*")] == ["offline"]


def test_a_w_and_b_service_inherited_from_another_process_is_not_used(monkeypatch, tmp_path):
    # What a parent that used wandb leaves in the environment (version-pid-transport-address).
    monkeypatch.setenv("WANDB_SERVICE", f"3-{os.getppid()}-unix-{tmp_path / 'parent-service.sock'}")
    writer = WandbWriter("offline", tmp_path, "r", {}, "p")
    assert writer.run is not None
    writer.finish()


@pytest.mark.parametrize("code", [0, 143])
def test_finish_records_the_exit_code(tmp_path, code):
    tracker = Tracker(tmp_path, WandbWriter("offline", tmp_path, "r", {}, "p"))
    tracker.log({"train/loss": 1.0}, step=1)
    tracker.finish(code)
    assert wandb_records.exit_code(wandb_records.segments(tmp_path)[-1]) == code


def test_a_nan_error_is_recorded_as_exit_1(synthfood_root, tmp_path):
    cfg = load_config(TINY, [f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=nan", "optim.lr=1e20"])
    with pytest.raises(NonFiniteLossError):
        train(cfg)
    assert wandb_records.exit_code(wandb_records.segments(tmp_path / "synthfood-tiny" / "nan")[-1]) == 1


def records_at(*steps):
    out = []
    for step in steps:
        out.append({"step": step, "train/loss": 1.0 / step})
        if step % 2 == 0:
            out.append({"step": step, "eval/dish/top1": step / 10})
    return out


def test_unsent_is_what_follows_the_prefix_w_and_b_holds():
    records = records_at(1, 2, 3, 4)
    assert unsent(records, {}) == records  # offline or new: W&B holds nothing
    assert unsent(records, {"step": 3, "train/loss": 1 / 3, "eval/dish/top1": 0.2}) == records_at(4)
    # The train record of step 4 arrived, its eval record did not (the summary still has step 2's).
    assert unsent(records, {"step": 4, "train/loss": 0.25, "eval/dish/top1": 0.2}) == [records[-1]]
    assert unsent(records, {"step": 9, "train/loss": 0.1}) == []  # W&B got past the checkpoint


def test_resumed_offline_run_gives_w_and_b_what_it_lacked(tmp_path):
    first = Tracker(tmp_path, WandbWriter("offline", tmp_path, "r", {}, "p"))
    for record in records_at(1, 2, 3):
        first.log(record, record["step"])
    run_id = first.wandb.run_id
    first.finish(143)
    time.sleep(1.1)  # W&B names an offline run's folder by the second
    second = Tracker(tmp_path, WandbWriter("offline", tmp_path, "r", {}, "p", run_id=run_id), resume_step=2)
    second.log({"train/loss": 0.3}, step=3)
    second.finish()
    expected = records_at(1, 2) + [{"step": 3, "train/loss": 0.3}]
    assert read_jsonl(tmp_path / "metrics.jsonl") == expected
    assert wandb_records.history(wandb_records.segments(tmp_path)[-1]) == expected


@pytest.mark.slow
def test_after_kill_9_and_resume_w_and_b_holds_every_metrics_record(synthfood_root, tmp_path):
    out = tmp_path / "runs"
    run_dir = out / "synthfood-tiny" / "killed"
    command = [sys.executable, "-m", "foodmtl", "train", str(TINY), f"data.root={synthfood_root}", f"output_dir={out}",
               "run=killed", "train.epochs=3", "train.checkpoint_every=2", "train.log_every=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        try:
            if load_checkpoint(run_dir / "checkpoints" / "last.pt")["train_state"]["step"] >= 4:
                break
        except CheckpointError:
            pass  # not written yet, or being replaced
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, proc.stderr.read()[-3000:]
    assert main(command[3:] + ["resume=auto"]) == 0  # resumed in this process: one Python start fewer
    logged = wandb_records.history(wandb_records.segments(run_dir)[-1])
    kept = read_jsonl(run_dir / "metrics.jsonl")
    assert len(logged) == len(kept) and all(map(wandb_records.same_record, logged, kept)), \
        (wandb_records.segments(run_dir), logged)
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 3
