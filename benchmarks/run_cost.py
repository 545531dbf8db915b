"""What a training run costs besides its epochs (issue 26 item 6): fixed cost, first-step latency,
and the memory of a million-image Food2K training process.

Every figure comes from a fresh process, as ``foodmtl train`` runs:

- fixed cost: what a 1-epoch run costs besides one epoch, from a 2-epoch ``foodmtl train`` on
  SynthFood with W&B offline (``--config``, default experiments/synthfood/tiny.yaml): its wall time
  from before the process is started until it has exited, minus twice its second epoch (training:
  data loading and optimizer steps; its evaluation and checkpoints). One-off work inside the first
  epoch (the first step's warm-up, importing torchmetrics for the first evaluation) is so counted as
  fixed. The child is ``foodmtl.cli.main`` with timers wrapped around the trainer's phases (data,
  model, run folder + W&B start, each optimizer step, evaluation, checkpoint saves, the work after
  training, the W&B finish), so the table also says where the rest of the time goes; the trainer
  module is imported before the config is read, not after (the same imports, in another order);
- fixed cost in a warm worker: what a local sweep pays per run (``foodmtl.worker``, several runs in
  turn in one process): one child imports as the worker does, then trains ``--worker-runs`` 2-epoch
  runs in turn through ``foodmtl.worker.serve``; each run's fixed cost is its wall time (from the
  worker taking it up to its exit code) minus twice its second epoch. The worker's start (process
  start to imports done) is paid once per worker, shared by all the runs it trains;
- first step: seconds from the process start until the first optimizer step has ended, minus the
  wall time of ``python -c "import torch, timm"``, run in turn with every training run;
- Food2K: a synthetic million-image release (benchmarks/data_index.py's ``make_release``); in one
  fresh process ``build_data`` for ``tasks=[dish]`` (the index: peak RSS above the RSS after the
  imports, and what stays), in another a ``Trainer`` on it (resnet10t, 32 px, batch 2, no DataLoader
  workers, W&B offline) taking two optimizer steps, and its peak RSS (VmHWM) from start to there;
  its evaluation (100,000 validation images) is not run.

    python benchmarks/run_cost.py --repeats 5 --worker-runs 6 --food2k-images 1000000 --food2k-dir /tmp/idx
"""
from __future__ import annotations

import argparse
import atexit
import functools
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout, no install needed
ENV = {"HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_SILENT": "true",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
SYNTHFOOD = dict(dishes=6, per_dish=16, size=64, seed=0)  # tests/conftest.py's SynthFood
FOOD2K_RUN = ["model.backbone=resnet10t", "model.pretrained=false", "model.drop_path_rate=0", "data.image_size=32",
              "data.batch_size=2", "data.eval_batch_size=2", "data.num_workers=0", "train.amp=none",
              "train.max_steps=2", "train.checkpoint_every=0", "train.progress=false", "tracking.wandb=offline"]
PHASES = {  # phase -> (module, attribute path) wrapped in the child
    "data": ("foodmtl.engine.trainer", "build_loaders"),
    "model": ("foodmtl.engine.trainer", "build_objective"),
    "optimizer": ("foodmtl.engine.trainer", "build_optimization"),
    "run folder + tracking start": ("foodmtl.engine.trainer", "Trainer._open"),
    "W&B start": ("foodmtl.tracking.wandb_run", "WandbWriter.__init__"),
    "step": ("foodmtl.engine.step", "StepRunner.run"),
    "train epoch": ("foodmtl.engine.trainer", "Trainer.train_epoch"),
    "evaluate": ("foodmtl.engine.trainer", "Trainer._evaluate"),
    "evaluate + checkpoints": ("foodmtl.engine.trainer", "Trainer.evaluate_and_checkpoint"),
    "checkpoint save": ("foodmtl.engine.snapshot", "Checkpoints.save"),
    "summary": ("foodmtl.tracking.tracker", "Tracker.summary"),
    "tracking finish": ("foodmtl.tracking.tracker", "Tracker.finish"),
}


# ---- child processes ------------------------------------------------------------------------
def status_mib(key: str) -> float:
    """VmRSS or VmHWM of this process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def timed(intervals: list, name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start, cpu = time.time(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            intervals.append((name, start, time.time(), cpu, time.process_time()))
    return wrapper


def wrap_phases(intervals: list) -> None:
    import importlib

    for name, (module, path) in PHASES.items():
        owner = importlib.import_module(module)
        *parents, attr = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        setattr(owner, attr, timed(intervals, name, getattr(owner, attr)))
    trainer = importlib.import_module("foodmtl.engine.trainer")
    trainer.AFTER_TRAINING = tuple(timed(intervals, "after training", work) for work in trainer.AFTER_TRAINING)


def child_run(out: Path, argv: list[str]) -> None:
    """``foodmtl train`` in this process with its phases timed; ``out`` gets them at exit."""
    intervals: list = []
    marks: dict[str, float] = {}
    # registered first, so it runs last: after W&B's own exit hooks
    atexit.register(lambda: out.write_text(json.dumps({"intervals": intervals, "marks": marks,
                                                       "peak_mib": status_mib("VmHWM")})))
    import foodmtl.engine.trainer  # noqa: F401 - imported here, before the config, to be wrapped
    from foodmtl.cli import main

    marks["imports done"] = (time.time(), time.process_time())
    wrap_phases(intervals)
    code = main(argv)
    marks["main returned"] = (time.time(), time.process_time())
    if code:
        raise SystemExit(code)


def child_worker(out: Path, argv: list[str], runs: int) -> None:
    """``runs`` copies of ``foodmtl ARGV`` (run=warm-K) in turn through ``foodmtl.worker.serve``, as a
    sweep's warm worker trains them, with the phases and each run timed; ``out`` gets them at exit."""
    intervals: list = []
    marks: dict[str, float] = {}
    atexit.register(lambda: out.write_text(json.dumps({"intervals": intervals, "marks": marks})))
    import foodmtl.engine.trainer  # noqa: F401 - imported here, before the config, to be wrapped
    from foodmtl import worker

    marks["imports done"] = (time.time(), time.process_time())
    wrap_phases(intervals)
    worker.run_one = timed(intervals, "worker run", worker.run_one)
    read, write = os.pipe()
    code = worker.serve([json.dumps([*argv, f"run=warm-{k}"]) for k in range(runs)], write)
    if code or os.read(read, 1024).split() != [b"0"] * runs:
        raise SystemExit(f"a run in the worker failed ({code})")


def child_index(root: Path) -> None:
    """build_data of the Food2K release: peak and kept RSS above the RSS after the imports."""
    from foodmtl.config import DataConfig
    from foodmtl.data.builder import build_data
    import foodmtl.engine.trainer  # noqa: F401 - everything a training process has imported

    gc.collect()
    before = status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS, so the peak is the build's
    start, cpu = time.perf_counter(), time.process_time()
    bundle = build_data(DataConfig(dataset="food2k", root=str(root), eval_split="val", image_size=32), ["dish"])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = status_mib("VmHWM")
    gc.collect()
    print(json.dumps({"rows": len(bundle.train) + len(bundle.eval), "build_s": seconds, "build_cpu_s": cpu,
                      "imports_mib": before, "peak_mib": peak - before, "kept_mib": status_mib("VmRSS") - before}))


def child_train_food2k(root: Path) -> None:
    """A Trainer on the Food2K release up to its second optimizer step; peak RSS of the process."""
    import torch
    import timm  # noqa: F401

    torch_timm = status_mib("VmRSS")
    from foodmtl.config import load_config
    from foodmtl.engine.trainer import Trainer

    imports = status_mib("VmRSS")
    cfg = load_config(str(REPO / "experiments" / "food2k" / "dish.yaml"), [f"data.root={root}", *FOOD2K_RUN])
    trainer = Trainer(cfg)
    built = status_mib("VmRSS")
    trainer.train_epoch()  # stops at train.max_steps
    trainer.tracker.finish()
    print(json.dumps({"torch_timm_mib": torch_timm, "imports_mib": imports, "built_mib": built,
                      "steps": trainer.state.step, "peak_mib": status_mib("VmHWM")}))


# ---- the parent -----------------------------------------------------------------------------
def run_child(args: list[str], cwd: Path) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """(time.time() just before the start, wall seconds from there to the exit, CPU seconds of the
    process and of what it waited for, the result)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=os.environ | ENV, capture_output=True, text=True)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return t0, wall, after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime, proc


def second_epoch(intervals: list) -> list[float]:
    """Wall and CPU seconds of the second epoch (training, evaluation, saves) among one run's intervals."""
    epochs = [i for i in intervals if i[0] in ("train epoch", "evaluate + checkpoints")]
    return [epochs[3][2] - epochs[2][1], epochs[3][4] - epochs[2][3]]


def warm_runs(config: Path, data: Path, overrides: list[str], work: Path, runs: int) -> dict:
    """``runs`` 2-epoch runs in one warm worker: the worker's start, and each run's wall, CPU and fixed cost."""
    timings = work / "worker-timings.json"
    argv = ["train", str(config), f"data.root={data}", "train.epochs=2", "tracking.wandb=offline", *overrides]
    t0, wall, cpu, _ = run_child([__file__, "--child-worker", str(timings), "--worker-runs", str(runs), "--", *argv],
                                 work)
    report = json.loads(timings.read_text())
    imported, imported_cpu = report["marks"]["imports done"]
    rows = []
    for name, start, end, cpu_start, cpu_end in (i for i in report["intervals"] if i[0] == "worker run"):
        inside = [i for i in report["intervals"] if start <= i[1] and i[2] <= end]
        epoch = second_epoch(inside)
        rows.append({"wall": [end - start, cpu_end - cpu_start], "epoch": epoch,
                     "fixed": [end - start - 2 * epoch[0], cpu_end - cpu_start - 2 * epoch[1]]})
    return {"start": [imported - t0, imported_cpu], "process": [wall, cpu], "runs": rows}


def one_run(config: Path, data: Path, overrides: list[str], work: Path) -> dict:
    """One 2-epoch run: wall and CPU seconds of the whole, of its second epoch, of the fixed cost, of
    the start to its first optimizer step and of each phase."""
    timings = work / "timings.json"
    argv = ["train", str(config), f"data.root={data}", "train.epochs=2", "tracking.wandb=offline", *overrides]
    t0, wall, cpu, _ = run_child([__file__, "--child-run", str(timings), "--", *argv], work)
    report = json.loads(timings.read_text())
    phases: dict[str, list[float]] = {}  # name -> [wall s, CPU s]
    for name, start, end, cpu_start, cpu_end in report["intervals"]:
        total = phases.setdefault(name, [0.0, 0.0])
        total[0] += end - start
        total[1] += cpu_end - cpu_start
    (imported, imported_cpu), (returned, returned_cpu) = report["marks"]["imports done"], report["marks"]["main returned"]
    phases["python start + imports"] = [imported - t0, imported_cpu]
    phases["main returned to process exit"] = [t0 + wall - returned, cpu - returned_cpu]
    epochs = [i for i in report["intervals"] if i[0] in ("train epoch", "evaluate + checkpoints")]
    epoch = second_epoch(report["intervals"])
    first = [epochs[1][2] - epochs[0][1], epochs[1][4] - epochs[0][3]]
    phases["first epoch - second epoch"] = [first[0] - epoch[0], first[1] - epoch[1]]
    step = min((i for i in report["intervals"] if i[0] == "step"), key=lambda i: i[2])
    return {"wall": [wall, cpu], "epoch": epoch, "fixed": [wall - 2 * epoch[0], cpu - 2 * epoch[1]],
            "first_step": [step[2] - t0, step[4]], "phases": phases, "peak_mib": report["peak_mib"]}


def import_seconds(work: Path) -> list[float]:
    """Wall and CPU seconds of ``python -c "import torch, timm"``."""
    return list(run_child(["-c", "import torch, timm"], work)[1:3])


def ensure_synthfood(path: Path | None, tmp: Path) -> Path:
    """``path`` (default: a folder in ``tmp``), made once: the lone runs and the warm worker share it."""
    root = path or tmp / "synthfood"
    if not (root / "synthfood.json").is_file():
        from foodmtl.synthfood.generate import generate_synthfood

        generate_synthfood(root, **SYNTHFOOD)
    return root


def fixed_cost_rows(args, tmp: Path) -> list[dict]:
    data = ensure_synthfood(args.data, tmp)
    rows = []
    for k in range(args.repeats):  # the import baseline and the run take turns: load hits both alike
        work = tmp / f"run-{k}"
        work.mkdir()
        imports = import_seconds(work)
        row = one_run(args.config, data, args.overrides, work)
        row["after_import"] = [row["first_step"][k] - imports[k] for k in (0, 1)]
        rows.append(row | {"import": imports})
    return rows


def warm_rows(args, tmp: Path) -> dict:
    work = tmp / "warm"
    work.mkdir()
    return warm_runs(args.config, ensure_synthfood(args.data, tmp), args.overrides, work, args.worker_runs)


def food2k_rows(args, tmp: Path) -> dict:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from data_index import make_release

    base = args.food2k_dir or tmp
    root = make_release(base / f"food2k-{args.food2k_images}", args.food2k_images)
    work = tmp / "food2k-run"
    work.mkdir(exist_ok=True)
    index = json.loads(run_child([__file__, "--child-index", str(root)], work)[3].stdout.strip().splitlines()[-1])
    train = json.loads(run_child([__file__, "--child-food2k", str(root)], work)[3].stdout.strip().splitlines()[-1])
    return {"images": args.food2k_images, "index": index, "train": train}


def median(rows: list[dict], get) -> float:
    return statistics.median(get(r) for r in rows)


def spread(rows: list[dict], get) -> str:
    values = [get(r) for r in rows]
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def print_report(args, rows: list[dict], warm: dict | None, food2k: dict | None) -> None:
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}; "
          f"{args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config} "
          f"{' '.join(args.overrides)}, 2 epochs, W&B offline, median of {len(rows)} runs")
    if rows:
        print("\n| figure | wall s: median (min-max) | CPU s: median (min-max) |\n| --- | ---: | ---: |")
        for name, key in [("2-epoch run", "wall"), ("its second epoch (training, evaluation, checkpoints)", "epoch"),
                          ("**fixed cost** (run - 2 x second epoch)", "fixed"),
                          ("`python -c \"import torch, timm\"`", "import"),
                          ("process start to the end of the first optimizer step", "first_step"),
                          ("**first step - import torch, timm**", "after_import")]:
            print(f"| {name} | {spread(rows, lambda r: r[key][0])} | {spread(rows, lambda r: r[key][1])} |")
        print("\nWhere the time goes (medians; each phase summed over the run; `step`, `evaluate` and "
              "`checkpoint save` lie inside the epochs):\n")
        print("| phase | wall s | CPU s |\n| --- | ---: | ---: |")
        for name in ["python start + imports", *PHASES, "first epoch - second epoch", "after training",
                     "main returned to process exit"]:
            print(f"| {name} | {median(rows, lambda r: r['phases'].get(name, [0, 0])[0]):.2f} | "
                  f"{median(rows, lambda r: r['phases'].get(name, [0, 0])[1]):.2f} |")
    if warm:
        runs = warm["runs"]
        print(f"\nIn a warm worker (a local sweep's `python -m foodmtl.worker`), {len(runs)} runs in turn in one "
              f"process:\n\n| figure | wall s | CPU s |\n| --- | ---: | ---: |")
        for name, get in [("worker start (python start + imports), once per worker", lambda: warm["start"]),
                          ("run 1: 2-epoch run", lambda: runs[0]["wall"]),
                          ("run 1: **fixed cost** (run - 2 x second epoch)", lambda: runs[0]["fixed"])]:
            print(f"| {name} | {get()[0]:.2f} | {get()[1]:.2f} |")
        later = runs[1:]
        for name, key in [(f"runs 2-{len(runs)}: 2-epoch run", "wall"),
                          (f"runs 2-{len(runs)}: its second epoch", "epoch"),
                          (f"runs 2-{len(runs)}: **fixed cost**", "fixed")]:
            print(f"| {name} | {spread(later, lambda r: r[key][0])} | {spread(later, lambda r: r[key][1])} |")
    if food2k:
        index, train = food2k["index"], food2k["train"]
        per_million = 1e6 / food2k["images"]
        print(f"\nFood2K, {food2k['images']:,} images listed ({index['rows']:,} in train + val, the ones built)\n")
        print("| figure | MiB |\n| --- | ---: |")
        for name, value in [("RSS after `import torch, timm`", train["torch_timm_mib"]),
                            ("RSS after the trainer's imports", train["imports_mib"]),
                            (f"index: build_data peak above the imports ({index['build_s']:.1f} s, "
                             f"{index['build_cpu_s']:.1f} CPU s)", index["peak_mib"]),
                            ("index: kept after build_data", index["kept_mib"]),
                            ("index peak per million images listed", index["peak_mib"] * per_million),
                            ("RSS with the Trainer built", train["built_mib"]),
                            (f"**training process peak** (VmHWM after {train['steps']} steps)", train["peak_mib"])]:
            print(f"| {name} | {value:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "experiments" / "synthfood" / "tiny.yaml")
    parser.add_argument("--data", type=Path, help="a SynthFood root (default: made in a temporary folder)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--food2k-images", type=int, default=1_000_000)
    parser.add_argument("--food2k-dir", type=Path, help="keep the synthetic Food2K release here")
    parser.add_argument("--worker-runs", type=int, default=6, help="runs in the warm worker (0: none)")
    parser.add_argument("--skip-runs", action="store_true")
    parser.add_argument("--skip-food2k", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--child-run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-food2k", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="key=value for the SynthFood run (after --)")
    args = parser.parse_args()
    if args.child_run:
        return child_run(args.child_run, args.overrides)
    if args.child_worker:
        return child_worker(args.child_worker, args.overrides, args.worker_runs)
    if args.child_index:
        return child_index(args.child_index)
    if args.child_food2k:
        return child_train_food2k(args.child_food2k)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [] if args.skip_runs else fixed_cost_rows(args, Path(tmp))
        warm = None if args.skip_runs or args.worker_runs < 2 else warm_rows(args, Path(tmp))
        food2k = None if args.skip_food2k else food2k_rows(args, Path(tmp))
    print_report(args, rows, warm, food2k)
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "warm": warm, "food2k": food2k}, indent=1))


if __name__ == "__main__":
    main()
