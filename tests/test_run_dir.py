"""Run folders: atomic claims, names that cannot collide, and starts that fail before claiming one."""
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import pytest

from foodmtl.cli import main
from foodmtl.config import load_config
from foodmtl.errors import ConfigError
from foodmtl.data.builder import build_data
from foodmtl.engine import run_dir as run_dir_module
from foodmtl.engine.preflight import metric_names, require_metric, require_training_steps
from foodmtl.engine.run_dir import LOCK_FILE, claim_run_dir, previous_checkpoint, release_run_dir
from foodmtl.utils.registry import UnknownNameError
from foodmtl.tasks import TaskSpec

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "experiments" / "synthfood" / "tiny.yaml"


def racer(out: str, run: str | None, barrier, results) -> None:
    cfg = load_config(TINY, [f"output_dir={out}"] + ([f"run={run}"] if run else []))
    barrier.wait()
    try:
        results.put(str(claim_run_dir(cfg)))
    except FileExistsError:
        results.put(None)


def race(out: Path, run: str | None, n: int = 4) -> list[str | None]:
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=racer, args=(str(out), run, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    claimed = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return claimed


def test_processes_racing_for_one_name_get_it_exactly_once(tmp_path):
    claimed = race(tmp_path, "same")
    assert [c for c in claimed if c] == [str(tmp_path / "synthfood-tiny" / "same")]


def test_default_names_never_collide_even_within_one_second(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dir_module.time, "strftime", lambda fmt: "20260101-000000")
    claimed = race(tmp_path, None)
    assert all(claimed) and len(set(claimed)) == len(claimed)
    assert sorted(Path(c).name for c in claimed) == ["uniform-s0-20260101-000000", "uniform-s0-20260101-000000-2",
                                                      "uniform-s0-20260101-000000-3", "uniform-s0-20260101-000000-4"]


def test_a_taken_name_is_refused_with_how_to_continue_it(tmp_path):
    cfg = load_config(TINY, [f"output_dir={tmp_path}", "run=r"])
    claim_run_dir(cfg)
    with pytest.raises(FileExistsError, match="resume=auto run=r"):
        claim_run_dir(cfg)


def test_resume_auto_finds_the_named_run_or_the_newest(tmp_path):
    cfg = load_config(TINY, [f"output_dir={tmp_path}"])
    assert previous_checkpoint(cfg) is None
    for name in ("old", "new"):
        (tmp_path / "synthfood-tiny" / name / "checkpoints").mkdir(parents=True)
        (tmp_path / "synthfood-tiny" / name / "checkpoints" / "last.pt").write_bytes(b"x")
    assert previous_checkpoint(cfg).parent.parent.name == "new"
    named = load_config(TINY, [f"output_dir={tmp_path}", "run=old"])
    assert previous_checkpoint(named).parent.parent.name == "old"
    (tmp_path / "synthfood-tiny" / "empty").mkdir()
    with pytest.raises(FileExistsError, match="no checkpoints/last.pt"):
        previous_checkpoint(load_config(TINY, [f"output_dir={tmp_path}", "run=empty"]))


# ---- the run folder's lock (another process holds it, or tries to take it) ----------------------
HOLD = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); "
        "print('held', flush=True); sys.stdin.read()")
TRY = "import fcntl, os, sys; fcntl.flock(os.open(sys.argv[1], os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB)"


def hold(lock: Path) -> subprocess.Popen:
    """Another process holding ``lock`` until its stdin is closed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def free(lock: Path) -> bool:
    """Whether another process could take ``lock`` now."""
    return subprocess.run([sys.executable, "-c", TRY, str(lock)], capture_output=True).returncode == 0


def test_a_claimed_run_folder_stays_locked_while_its_process_lives_and_forked_workers_keep_no_copy(tmp_path):
    [winner] = [c for c in race(tmp_path, "raced") if c]
    assert free(Path(winner) / LOCK_FILE)  # its process ended
    folder = claim_run_dir(load_config(TINY, [f"output_dir={tmp_path}", "run=mine"]))
    assert not free(folder / LOCK_FILE)
    worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))  # as a DataLoader worker
    worker.start()
    try:
        release_run_dir(folder)
        assert free(folder / LOCK_FILE)
    finally:
        worker.terminate()


def files(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("checkpointed", [True, False])
def test_resume_auto_of_a_run_another_process_holds_is_one_error_line_and_writes_nothing(tmp_path, capsys,
                                                                                          checkpointed):
    """A requeued job started while the first still trains (with or without its first last.pt)."""
    folder = tmp_path / "synthfood-tiny" / "r"
    (folder / "checkpoints").mkdir(parents=True)
    if checkpointed:
        (folder / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    holder = hold(folder / LOCK_FILE)
    before = files(folder)
    start = ["train", str(TINY), f"output_dir={tmp_path}", "run=r", "resume=auto", "tracking.wandb=disabled"]
    try:
        code = main(start)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0] == (f"error: run folder {folder} is in use by another process (it holds {folder / LOCK_FILE}); "
                      "wait for that run to end, or pick another run=NAME")
    assert files(folder) == before
    assert main(start) == 2  # the holder gone, the start gets as far as the folder's content
    assert "in use" not in capsys.readouterr().err
    assert free(folder / LOCK_FILE)  # a refused start leaves the folder unlocked


@pytest.mark.parametrize("samples, world, batch, ok", [(20, 1, 16, True), (10, 1, 16, False), (20, 2, 16, False),
                                                       (64, 2, 32, True)])
def test_a_loader_without_a_full_batch_is_an_error_naming_batch_size_and_ranks(samples, world, batch, ok):
    from foodmtl.data.builder import train_loader

    class Dataset:
        def __len__(self):
            return samples

    loader = train_loader(Dataset(), batch, 0, world=world)  # the real sampler and drop_last
    cfg = load_config(TINY, [f"data.batch_size={batch}", "data.limit=20"])
    if ok:
        require_training_steps(len(loader), samples, cfg, world)
        return
    with pytest.raises(ConfigError) as error:
        require_training_steps(len(loader), samples, cfg, world)
    assert all(s in str(error.value) for s in (f"data.batch_size={batch}", "data.limit=20", f"on {world} rank"))


def test_metric_names_are_those_an_evaluation_reports(synthfood_root):
    """Checked against the keys a real evaluation of every task kind on SynthFood returns."""
    import torch

    from foodmtl.tasks import task_options
    from foodmtl.engine.distributed import DistInfo
    from foodmtl.engine.evaluate import eval_loader, evaluate
    from foodmtl.models.multitask import build_model

    cfg = load_config(TINY, [f"data.root={synthfood_root}", "data.limit=8",
                             "tasks=[dish,category,cuisine,ingredients,segmentation]"])
    data = build_data(cfg.data, cfg.tasks, 0, task_options(cfg))
    info = DistInfo(0, 1, 0, torch.device("cpu"))
    metrics, _ = evaluate(build_model(cfg.model, data.tasks), eval_loader(data.eval, 8, 0, info), info)
    assert sorted(metric_names(data.tasks)) == sorted(metrics)
    assert "dish/top5" in metrics  # 6 dishes
    few = TaskSpec("dish", "multiclass", ("a", "b", "c", "d"))
    assert metric_names([few]) == ["dish/top1", "dish/f1_macro", "dish/top3", "dish/loss", "loss"]


@pytest.mark.parametrize("override, message", [("data.limit=10", "no optimizer step"),
                                               ("train.best_metric=dish/top9", "train.best_metric 'dish/top9'")])
def test_a_start_that_cannot_train_fails_before_claiming_a_folder(synthfood_root, tmp_path, capsys, override,
                                                                   message):
    code = main(["train", str(TINY), f"data.root={synthfood_root}", f"output_dir={tmp_path}", "run=r", override])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_best_metric_unknown_to_the_tasks_is_refused_with_close_names():
    tasks = [TaskSpec("dish", "multiclass", tuple("abcdef")), TaskSpec("ingredients", "multilabel", ("x", "y"))]
    require_metric("ingredients/mAP", tasks)
    with pytest.raises(UnknownNameError, match="dish/top1"):
        require_metric("dish/top_1", tasks)


@pytest.mark.slow
def test_two_trainings_started_together_on_one_name_one_fails_before_writing(synthfood_root, tmp_path):
    cmd = [sys.executable, "-m", "foodmtl", "train", str(TINY), f"data.root={synthfood_root}", f"output_dir={tmp_path}",
           "run=same", "train.max_steps=2", "train.epochs=1", "tracking.wandb=disabled"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "error: run folder" in loser and "already exists" in loser and "Traceback" not in loser
    lines = (tmp_path / "synthfood-tiny" / "same" / "metrics.jsonl").read_text().splitlines()
    steps = [line for line in lines if '"train/loss"' in line]
    assert len(steps) == 2  # one run's two steps, not two runs interleaved
