"""A full disk or unwritable run folder: one ``error:`` line naming the file, the last good
checkpoint still loadable, no partial temporary file left.

A full disk is a real one where possible: RLIMIT_FSIZE makes the kernel refuse writes past a
size (EFBIG), as ENOSPC would, for this process only and without root.
"""
import contextlib
import errno
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from foodmtl.engine import checkpoint as checkpoint_module
from foodmtl.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from foodmtl.tracking import local as local_module
from foodmtl.tracking.local import JsonlWriter, read_jsonl, write_json_atomic
from foodmtl.utils import output as output_module
from foodmtl.utils.output import OutputError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"
LIMIT = 2**20  # far above what pytest itself writes meanwhile


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """Writes past ``nbytes`` fail with EFBIG (Python ignores the SIGXFSZ that comes with them)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def checkpoint(value: float, numel: int = 2**19) -> dict:
    return {"objective": {"w": torch.full((numel,), value)}, "config": {}}  # 2 MiB of float32


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


def test_checkpoint_past_the_size_limit_keeps_the_previous_one(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(checkpoint(0.0, numel=1000), path)
    with file_size_limit(LIMIT), pytest.raises(OutputError) as failed:
        save_checkpoint(checkpoint(1.0), path)
    assert str(failed.value) == f"cannot write {path}: File too large"
    assert failed.value.errno == errno.EFBIG
    assert torch.equal(load_checkpoint(path)["objective"]["w"], torch.zeros(1000))
    assert leftovers(path.parent) == []


def test_disk_full_message_says_how_much_space_is_left(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(checkpoint(0.0, numel=10), path)

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_full)
    with pytest.raises(OutputError, match=rf"cannot write {path}: No space left on device \(\d+ MiB free on "):
        save_checkpoint(checkpoint(1.0, numel=10), path)
    assert torch.equal(load_checkpoint(path)["objective"]["w"], torch.zeros(10))
    assert leftovers(tmp_path) == []


def test_a_partial_file_left_by_a_killed_writer_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "last.pt"
    (tmp_path / ".last.pt.tmp-99999").write_bytes(b"x" * 1000)  # a writer SIGKILLed mid-save
    save_checkpoint(checkpoint(0.0, numel=10), path)
    assert leftovers(tmp_path) == [] and load_checkpoint(path)


def test_metrics_line_that_does_not_fit_is_cut_off_and_the_file_stays_valid(tmp_path):
    path = tmp_path / "metrics.jsonl"
    writer = JsonlWriter(path)
    writer.log({"step": 1, "train/loss": 0.5})
    before = path.read_bytes()
    with file_size_limit(len(before) + 10), pytest.raises(OutputError, match=f"cannot write {path}: File too large"):
        writer.log({"step": 2, "train/loss": 0.25, "note": "x" * 100})
    writer.close()
    assert path.read_bytes() == before and read_jsonl(path) == [{"step": 1, "train/loss": 0.5}]


def test_summary_that_does_not_fit_keeps_the_old_one(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"best": 0.5})
    with file_size_limit(LIMIT), pytest.raises(OutputError, match=f"cannot write {path}: File too large"):
        write_json_atomic(path, {"best": 0.6, "padding": "x" * 2 * LIMIT})
    assert json.loads(path.read_text()) == {"best": 0.5} and leftovers(tmp_path) == []


def test_read_only_run_folder_names_the_file(tmp_path, monkeypatch):
    """The folder refuses new files as a read-only one does (EACCES at open), simulated so that the
    test runs as root too, whose CAP_DAC_OVERRIDE writes into a chmod 555 folder."""
    folder = tmp_path / "checkpoints"
    save_checkpoint(checkpoint(0.0, numel=10), folder / "last.pt")

    def refuse(file, mode="r", *args, **kwargs):
        if Path(file).parent == folder and mode != "rb":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return open(file, mode, *args, **kwargs)

    for module in (output_module, local_module):  # the writers' own open(), not the builtin
        monkeypatch.setattr(module, "open", refuse, raising=False)
    with pytest.raises(OutputError, match=f"cannot write {folder / 'last.pt'}: Permission denied"):
        save_checkpoint(checkpoint(1.0, numel=10), folder / "last.pt")
    with pytest.raises(OutputError, match=f"cannot write {folder / 'metrics.jsonl'}: Permission denied"):
        JsonlWriter(folder / "metrics.jsonl")
    assert torch.equal(load_checkpoint(folder / "last.pt")["objective"]["w"], torch.zeros(10))
    assert leftovers(folder) == []


@pytest.mark.slow
def test_disk_full_during_training_ends_with_one_error_line(synthfood_root, tmp_path):
    out = tmp_path / "runs"
    run_dir = out / "synthfood-tiny" / "full"
    last = run_dir / "checkpoints" / "last.pt"
    proc = subprocess.Popen([sys.executable, "-m", "foodmtl", "train", str(TINY), f"data.root={synthfood_root}",
                             f"output_dir={out}", "run=full", "train.epochs=6", "train.checkpoint_every=1"],
                            cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        try:
            if load_checkpoint(last)["train_state"]["step"] >= 2:
                break
        except CheckpointError:
            pass  # not written yet, or being replaced
        time.sleep(0.05)
    # From now on the training process can write no file past half a checkpoint: the next save fails.
    size = last.stat().st_size // 2
    resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    stderr = proc.communicate(timeout=600)[1]
    assert proc.returncode == 2, stderr[-3000:]
    assert "Traceback" not in stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: cannot write {run_dir}") and "File too large" in line, line
    assert load_checkpoint(last)["train_state"]["step"] >= 2
    assert [p for p in run_dir.rglob("*") if ".tmp" in p.name] == []
    assert read_jsonl(run_dir / "metrics.jsonl")
