"""The GPU check of issue 19 in one command: setup, then parts a-e, each under a hard time limit.

    bash benchmarks/gpu_check.sh                  # on the GPU machine (device tool: carry [".whl"])
    bash benchmarks/gpu_check.sh --dry-run        # anywhere: the plan, the exact commands, is .whl/ complete?
    bash benchmarks/gpu_check.sh --profile smoke --no-install   # the same code on a CPU, tiny sizes

setup  installs the carried wheels (.whl/, made by benchmarks/gpu_wheels.sh) into /tmp/site, probes
       the machine (GPU, driver, torch, the carried packages), then draws the SynthFood sets of d
       and e in the background, one CPU core each, while a and b run.
a      ``pytest -m cuda tests/test_cuda.py``: every GPU path against the same run on the CPU.
b      benchmarks/step.py on resnet50 and convnext_tiny, batch 128, 224 px, bf16, channels_last:
       images/s and peak memory of bare timm / multi-task / multi-task + segmentation.
d      ``foodmtl train`` on a SynthFood of 100 dishes x 24 images at 224 px, 2 epochs: images/s and
       epoch time from the timestamps of its log lines, GPU utilisation from nvidia-smi every 0.5 s.
c      benchmarks/data.py with 14 workers, 512-px JPEGs to 224 px, also nvJPEG decode on the GPU,
       against b's images/s. It runs after d, so no data drawing competes for the CPU cores.
e      2 processes on the one GPU: ``torchrun ... foodmtl train ... train.device=cuda`` with
       FOODMTL_DIST_BACKEND=gloo (nccl refuses two ranks on one GPU), bf16, a loss-level and a
       gradient-level strategy.

Each part's time is capped and the whole stays within the profile's budget (470 s for the GPU);
a command past its time is killed with its process group. A part that fails or runs out of time
is recorded as such, with its last output lines, and the next part starts. Results go to $OUT
if set, else runs/gpu_check/: one JSON per part, summary.md (a table per part, each with its
command, for docs/benchmarks.md) and gpu_check.log (all output): the 8 files the device tool
brings back. Only figures measured in this run are written. Exit 0 when every part passed, 1
when one did not, 2 for bad input (incomplete .whl/, no GPU) with one ``error:`` line.

Sizing d: drawing SynthFood costs ~42 ms of CPU per 224-px image (``time python
data_prep/make_synthfood.py --out /tmp/sf --dishes 100 --per-dish 2 --size 224``: 8.8 s user+sys
for 200 images on the 2-core dev machine), so 2,400 images take ~100 s of one core.

Standard library only, so it runs before the wheels are installed.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
SITE = "/tmp/site"
WHEEL_LIST = ROOT / "benchmarks" / "gpu_wheels.txt"
TREE_LIMIT_MIB = 64  # what the device tool carries: tracked + untracked-not-ignored files + .whl
RESULTS = {"setup": "setup.json", "a": "a_cuda_tests.json", "b": "b_step.json", "c": "c_data.json",
           "d": "d_train.json", "e": "e_ddp.json"}
SUMMARY, LOG = "summary.md", "gpu_check.log"
TAIL = 25  # output lines kept in a failed part's record


@dataclass(frozen=True)
class Profile:
    device: str
    amp: str
    backbones: tuple[str, ...]
    batch: int
    size: int
    steps: int
    warmup: int
    workers: int
    source_size: int            # side of the JPEGs drawn for c
    source_images: int
    pass_images: int            # images per pass in c (round the files)
    dishes: int                 # d's SynthFood
    per_dish: int
    train_backbone: str
    train_batch: int
    epochs: int
    ddp_strategies: tuple[str, ...]
    ddp_epochs: int             # e's runs
    ddp_workers: int
    budget_s: int
    caps: dict[str, int]        # seconds per part; they add up to less than the budget


PROFILES = {
    "gpu": Profile(device="cuda", amp="bf16", backbones=("resnet50", "convnext_tiny"), batch=128, size=224, steps=20,
                   warmup=5, workers=14, source_size=512, source_images=64, pass_images=3584, dishes=100,
                   per_dish=24, train_backbone="resnet50", train_batch=128, epochs=2,
                   ddp_strategies=("uncertainty", "pcgrad"), ddp_epochs=2, ddp_workers=2, budget_s=470,
                   caps={"setup": 40, "a": 150, "b": 90, "d": 75, "c": 50, "e": 55}),
    # The same code on a CPU in about a minute: what tests/test_benchmarks.py runs. e's one epoch in
    # the ranks' own process is 3.4 of its 17.8 CPU s less than 2 epochs with 2 loader workers each.
    "smoke": Profile(device="cpu", amp="none", backbones=("resnet10t",), batch=4, size=32, steps=1, warmup=0,
                     workers=2, source_size=128, source_images=16, pass_images=16, dishes=6, per_dish=8,
                     train_backbone="resnet10t", train_batch=8, epochs=2, ddp_strategies=("pcgrad",), ddp_epochs=1,
                     ddp_workers=0, budget_s=1500,
                     caps={"setup": 120, "a": 240, "b": 240, "d": 400, "c": 240, "e": 240}),
}


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    shown: str = ""  # replaces the arguments from the one it starts with (a long list of wheels)

    def shell(self) -> str:
        """As a person would type it: ``python`` for this interpreter (the summary names it)."""
        argv = ["python" if a == sys.executable else a for a in self.argv]
        text = shlex.join(argv)
        if self.shown:
            text = text[:text.index(self.shown.split()[0])] + self.shown
        return " ".join([*(f"{k}={v}" for k, v in self.env.items()), text])


@dataclass
class Outcome:
    command: str
    rc: int | None              # None: killed at its time limit
    started: float              # time.perf_counter() at its start
    seconds: float
    lines: list[tuple[float, str]]  # (seconds since the command started, line)

    @property
    def ok(self) -> bool:
        return self.rc == 0


@dataclass
class Part:
    key: str
    title: str
    commands: list[Command]
    collect: Callable[["Check", list[Outcome]], dict]
    needs: str | None = None    # a background job that must finish first


# ---- running commands ----------------------------------------------------------------------

class Check:
    """One run of the check: where things go, the clock, the log, the parts' records."""

    def __init__(self, profile_name: str, out: Path, work: Path, install: bool, wheel_dir: Path):
        self.profile_name, self.profile = profile_name, PROFILES[profile_name]
        self.out, self.work, self.install, self.wheel_dir = out, work, install, wheel_dir
        self.wheels = sorted(wheel_dir.glob("*.whl"))
        self.python = sys.executable
        self.start = time.perf_counter()
        self.deadline = self.start + self.profile.budget_s
        self.records: dict[str, dict] = {}
        self.jobs: dict[str, subprocess.Popen] = {}
        self.env = child_env(install)
        self.log = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def note(self, text: str) -> None:
        line = f"[{self.elapsed():6.1f}s] {text}"
        print(line, flush=True)
        if self.log:
            self.log.write(line + "\n")
            self.log.flush()

    def execute(self, command: Command, seconds: float) -> Outcome:
        """Run ``command`` for at most ``seconds``, its output timestamped line by line."""
        self.note(f"$ {command.shell()}  (limit {seconds:.0f} s)")
        start = time.perf_counter()
        proc = subprocess.Popen(command.argv, cwd=ROOT, env={**self.env, **command.env}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        lines: list[tuple[float, str]] = []
        reader = threading.Thread(target=self._read, args=(proc, lines, start), daemon=True)
        reader.start()
        try:
            rc: int | None = proc.wait(timeout=max(1.0, seconds))
        except subprocess.TimeoutExpired:
            stop_group(proc)
            rc = None
        reader.join(timeout=10)
        outcome = Outcome(command.shell(), rc, start, time.perf_counter() - start, lines)
        self.note(f"  -> {'killed at its time limit' if rc is None else f'exit {rc}'} after {outcome.seconds:.1f} s")
        return outcome

    def _read(self, proc: subprocess.Popen, lines: list, start: float) -> None:
        for text in proc.stdout:
            lines.append((time.perf_counter() - start, text.rstrip("\n")))
            if self.log:
                self.log.write(f"    {text}")
        if self.log:
            self.log.flush()

    def background(self, name: str, command: Command) -> None:
        self.note(f"$ {command.shell()} &  (background: {name})")
        log = open(self.work / f"{name}.log", "w")
        self.jobs[name] = subprocess.Popen(command.argv, cwd=ROOT, env={**self.env, **command.env}, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)

    def wait_job(self, name: str, seconds: float) -> str | None:
        """None when the job finished within ``seconds``, else what went wrong."""
        start = time.perf_counter()
        try:
            rc = self.jobs[name].wait(timeout=max(1.0, seconds))
        except subprocess.TimeoutExpired:
            return f"background job {name} still running after {seconds:.0f} s"
        self.note(f"  background {name}: exit {rc}, waited {time.perf_counter() - start:.1f} s")
        return None if rc == 0 else f"background job {name} exited {rc}: {tail_of(self.work / f'{name}.log')}"

    def stop_jobs(self) -> None:
        for proc in self.jobs.values():
            if proc.poll() is None:
                stop_group(proc)


def child_env(install: bool) -> dict[str, str]:
    paths = [SITE] if install else []
    paths += [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
            "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def stop_group(proc: subprocess.Popen) -> None:
    """TERM, then KILL, to the process group this script started the command in."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def tail_of(path: Path, n: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])
    except OSError:
        return ""


# ---- the parts -------------------------------------------------------------------------------

def plan(check: Check) -> list[Part]:
    p, py, w = check.profile, check.python, check.work
    step = [Command([py, "benchmarks/step.py", "--backbone", bb, "--batch", str(p.batch), "--size", str(p.size),
                     "--amp", p.amp, "--channels-last", "--device", p.device, "--steps", str(p.steps),
                     "--warmup", str(p.warmup), "--threads", "4", "--json", str(w / f"b_{bb}.json")])
            for bb in p.backbones]
    train = Command([py, "-m", "foodmtl", "train", "experiments/synthfood/demo.yaml", f"data.root={w}/synthfood_d",
                     f"data.image_size={p.size if p.device == 'cuda' else 64}", f"data.batch_size={p.train_batch}",
                     f"data.eval_batch_size={2 * p.train_batch}", f"data.num_workers={p.workers}",
                     f"model.backbone={p.train_backbone}", f"train.epochs={p.epochs}", f"train.device={p.device}",
                     f"train.amp={p.amp}", "train.progress=false", "train.overlays=2", "tracking.wandb=disabled",
                     f"output_dir={w}/runs", "run=e2e"])
    data = Command([py, "benchmarks/data.py", "--size", str(p.size), "--source-size", str(p.source_size), "--images",
                    str(p.source_images), "--pass-images", str(p.pass_images), "--batch", str(p.batch), "--workers",
                    str(p.workers), "--repeats", "3", "--decode-device", p.device, "--json", str(w / "c_data.json")])
    ddp = [Command([py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "foodmtl", "train",
                    "experiments/synthfood/tiny.yaml", f"data.root={w}/synthfood_e", f"output_dir={w}/runs",
                    f"run=ddp-{name}", f"train.device={p.device}", f"train.amp={p.amp}", f"weighting.name={name}",
                    f"train.epochs={p.ddp_epochs}", f"data.num_workers={p.ddp_workers}", "tracking.wandb=offline"],
                   {"FOODMTL_DIST_BACKEND": "gloo"})
           for name in p.ddp_strategies]
    tests = Command([py, "-m", "pytest", "-m", "cuda", "-v", "-p", "no:cacheprovider", "--junitxml",
                     str(w / "a.xml"), "tests/test_cuda.py"])
    return [Part("setup", "install the carried wheels, probe the machine", setup_commands(check), collect_setup),
            Part("a", "CUDA tests", [tests], collect_tests),
            Part("b", "train step: bare timm / multi-task / + segmentation", step, collect_step),
            Part("d", "end-to-end foodmtl train", [train], collect_train, needs="synthfood_d"),
            Part("c", "data path against the model", [data], collect_data),
            Part("e", "2-process DDP on one GPU (gloo, CUDA tensors)", ddp, collect_ddp, needs="synthfood_e")]


def background_commands(check: Check) -> dict[str, Command]:
    p, py, w = check.profile, check.python, check.work
    size = p.size if p.device == "cuda" else 64
    draw = [py, "data_prep/make_synthfood.py", "--overwrite", "--out"]
    return {"synthfood_d": Command([*draw, f"{w}/synthfood_d", "--dishes", str(p.dishes), "--per-dish",
                                    str(p.per_dish), "--size", str(size)]),
            "synthfood_e": Command([*draw, f"{w}/synthfood_e", "--dishes", "6", "--per-dish", "16", "--size", "64"])}


def probe() -> dict:
    """The machine and the packages the parts import (``gpu_check.py --probe`` prints it as JSON)."""
    import importlib
    import platform

    info: dict = {"python": platform.python_version(), "cpus": os.cpu_count(), "executable": sys.executable}
    try:
        import torch
        info.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info.update(gpu=props.name, gpu_count=torch.cuda.device_count(), bf16=torch.cuda.is_bf16_supported(),
                        gpu_memory_gib=round(props.total_memory / 2**30, 1), capability=f"{props.major}.{props.minor}")
    except Exception as exc:  # recorded, not raised: the probe reports what is broken
        info["torch_error"] = repr(exc)[:300]
    info["modules"] = {}
    for name in PROBED:
        try:
            info["modules"][name] = getattr(importlib.import_module(name), "__version__", "?")
        except Exception as exc:
            info["modules"][name] = "error: " + repr(exc)[:300]
    try:
        info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                        capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["driver"] = None
    return info


PROBED = ("torchvision", "timm", "torchmetrics", "albumentations", "omegaconf", "wandb", "pycocotools",
          "segmentation_models_pytorch", "colorcet", "pandas", "cv2", "foodmtl")


def setup_commands(check: Check) -> list[Command]:
    install = [Command([check.python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", SITE, *map(str, check.wheels)],
                       shown=f"--target {SITE} {check.wheel_dir.name}/*.whl")]
    return [*(install if check.install else []), Command([check.python, "benchmarks/gpu_check.py", "--probe"])]


# ---- what each part measured -------------------------------------------------------------------

def status(outcomes: list[Outcome], planned: int) -> str:
    if any(o.rc is None for o in outcomes):
        return "timed out"
    if len(outcomes) < planned or not all(o.ok for o in outcomes):
        return "failed"
    return "passed"


def collect_setup(check: Check, outcomes: list[Outcome]) -> dict:
    probe = next((json.loads(text[6:]) for o in outcomes for _, text in o.lines if text.startswith("PROBE ")), {})
    broken = sorted(k for k, v in probe.get("modules", {}).items() if str(v).startswith("error"))
    result = status(outcomes, len(setup_commands(check)))
    if result == "passed" and broken:
        result = "failed"
    if result == "passed" and check.profile.device == "cuda" and not probe.get("cuda_available"):
        result = "failed"
    return {"status": result, "probe": probe, "broken_imports": broken}


def collect_tests(check: Check, outcomes: list[Outcome]) -> dict:
    cases = junit_cases(check.work / "a.xml") or verbose_cases(outcomes)
    counts = {k: sum(1 for c in cases if c["outcome"] == k) for k in ("passed", "failed", "error", "skipped")}
    result = status(outcomes, 1)
    if counts["skipped"] and not counts["passed"] and not counts["failed"] and not counts["error"]:
        result = "skipped (no CUDA device)" if outcomes and outcomes[0].ok else result
    elif result == "passed" and (counts["skipped"] or not counts["passed"]):
        result = "failed"
    return {"status": result, "counts": counts, "cases": cases}


def junit_cases(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = "failed" if tag == "failure" else tag
                message = (found.get("message") or "").splitlines()[0][:300] if found.get("message") else ""
        cases.append({"test": case.get("name"), "outcome": outcome, "seconds": float(case.get("time", 0)),
                      "message": message})
    return cases


def verbose_cases(outcomes: list[Outcome]) -> list[dict]:
    """From ``pytest -v`` lines, when the run was killed before writing its report."""
    found = (re.search(r"::(\S+) (PASSED|FAILED|ERROR|SKIPPED)", text) for o in outcomes for _, text in o.lines)
    return [{"test": m[1], "outcome": {"ERROR": "error"}.get(m[2], m[2].lower()), "seconds": None, "message": ""}
            for m in found if m]


def collect_step(check: Check, outcomes: list[Outcome]) -> dict:
    tables = {}
    for backbone in check.profile.backbones:
        path = check.work / f"b_{backbone}.json"
        if path.is_file():
            table = json.loads(path.read_text())
            rows = {r["row"]: r for r in table["rows"]}
            multitask, bare = rows.get("multi-task (4 heads)"), rows.get("bare timm + linear")
            table["multitask_vs_bare_images_per_s"] = multitask["images_per_s"] / bare["images_per_s"]
            tables[backbone] = table
    result = status(outcomes, len(check.profile.backbones))
    return {"status": result if len(tables) == len(check.profile.backbones) else "failed", "backbones": tables}


def collect_data(check: Check, outcomes: list[Outcome]) -> dict:
    path = check.work / "c_data.json"
    if not path.is_file():
        return {"status": "failed" if status(outcomes, 1) == "passed" else status(outcomes, 1)}
    data = json.loads(path.read_text())
    loader = {r["pipeline"]: r["images_per_s"] for r in data["rows"]}
    models = {f"{bb}, {r['row']}": r["images_per_s"]
              for bb, t in check.records.get("b", {}).get("backbones", {}).items() for r in t["rows"]}
    data["loader_over_model"] = {model: {pipe: rate / speed for pipe, rate in loader.items()}
                                 for model, speed in models.items()}
    return {"status": status(outcomes, 1), **data}


EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+), step (\d+)")
RUN_FOLDER = re.compile(r"^run folder: (\S+)")


def collect_train(check: Check, outcomes: list[Outcome], samples: list[tuple[float, float, float]] = ()) -> dict:
    o = outcomes[0] if outcomes else None
    record: dict = {"status": status(outcomes, 1)}
    if o is None:
        return record
    epochs = [(t, int(m[1]), int(m[3])) for t, text in o.lines for m in [EPOCH_LINE.search(text)] if m]
    folder = next((Path(m[1]) for _, text in o.lines for m in [RUN_FOLDER.match(text)] if m), None)
    summary = json.loads((folder / "summary.json").read_text()) if folder and (folder / "summary.json").is_file() else {}
    record.update(process_seconds=o.seconds, epoch_end_seconds=[t for t, _, _ in epochs], final=summary.get("final"),
                  steps=summary.get("steps"), images=train_images(check))
    if len(epochs) >= 2:
        (t1, _, s1), (t2, _, s2) = epochs[-2], epochs[-1]
        record.update(last_epoch_seconds=t2 - t1, last_epoch_steps=s2 - s1,
                      images_per_s=(s2 - s1) * check.profile.train_batch / (t2 - t1))
        window = [u for t, u, _ in samples if o.started + t1 <= t <= o.started + t2]
        record["gpu_util_last_epoch"] = statistics.mean(window) if window else None
    record["gpu_util_whole_run"] = statistics.mean([u for _, u, _ in samples]) if samples else None
    record["gpu_memory_used_mib_max"] = max((m for _, _, m in samples), default=None)
    return record


def train_images(check: Check) -> int | None:
    """The images the run trains on: Food-101's train list less SynthFood's validation list."""
    root = check.work / "synthfood_d"
    listing, validation = root / "food101" / "meta" / "train.txt", root / "val.txt"
    if not listing.is_file():
        return None
    held = set(validation.read_text().split()) if validation.is_file() else set()
    return len(set(listing.read_text().split()) - held)


RANK_LINE = re.compile(r"rank (\d+) of (\d+): (\w+) backend, device (\S+)")


def collect_ddp(check: Check, outcomes: list[Outcome]) -> dict:
    runs = []
    for strategy, o in zip(check.profile.ddp_strategies, outcomes):
        ranks = sorted({m.groups() for _, text in o.lines for m in [RANK_LINE.search(text)] if m})
        folder = next((Path(m[1]) for _, text in o.lines for m in [RUN_FOLDER.search(text)] if m), None)
        summary = json.loads((folder / "summary.json").read_text()) if folder and (folder / "summary.json").is_file() else {}
        wandb_runs = len(list((folder / "wandb").glob("offline-run-*"))) if folder else 0
        runs.append({"strategy": strategy, "rc": o.rc, "seconds": o.seconds, "ranks": [list(r) for r in ranks],
                     "steps": summary.get("steps"), "final": summary.get("final"), "wandb_offline_runs": wandb_runs})
    result = status(outcomes, len(check.profile.ddp_strategies))
    if result == "passed" and not all(len(r["ranks"]) == 2 and r["steps"] for r in runs):
        result = "failed"
    return {"status": result, "runs": runs}


# ---- the GPU sampler of part d -------------------------------------------------------------

class GpuSampler:
    """nvidia-smi every 0.5 s: (time.perf_counter(), utilisation %, memory used MiB)."""

    def __init__(self, check: Check):
        self.samples: list[tuple[float, float, float]] = []
        try:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                          "--format=csv,noheader,nounits", "-lms", "500"], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        except OSError:
            self.proc = None
            check.note("  nvidia-smi not found: no GPU utilisation")
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for text in self.proc.stdout:
            try:
                util, memory = (float(v) for v in text.split(",")[:2])
            except ValueError:
                continue
            self.samples.append((time.perf_counter(), util, memory))

    def stop(self) -> list[tuple[float, float, float]]:
        if self.proc:
            stop_group(self.proc)
        return self.samples


# ---- the run -------------------------------------------------------------------------------

def run_part(check: Check, part: Part) -> dict:
    part_deadline = min(check.deadline, time.perf_counter() + check.profile.caps[part.key])
    check.note(f"== {part.key}: {part.title}")
    record = {"part": part.key, "title": part.title, "commands": [c.shell() for c in part.commands],
              "cap_s": check.profile.caps[part.key]}
    if part.needs:
        problem = check.wait_job(part.needs, part_deadline - time.perf_counter())
        if problem:
            return {**record, "status": "failed", "error": problem}
    outcomes, sampler = [], GpuSampler(check) if part.key == "d" and check.profile.device == "cuda" else None
    for i, command in enumerate(part.commands):
        left = part_deadline - time.perf_counter()
        if left < 5:
            break
        outcomes.append(check.execute(command, left / (len(part.commands) - i)))
    extra = {"samples": sampler.stop()} if sampler else {}
    measured = part.collect(check, outcomes, **extra)
    if measured["status"] != "passed":
        measured["output_tail"] = [text for o in outcomes for _, text in o.lines][-TAIL:]
    return {**record, "seconds": sum(o.seconds for o in outcomes), **measured}


def execute_all(check: Check, parts: list[Part]) -> bool:
    check.out.mkdir(parents=True, exist_ok=True)
    check.work.mkdir(parents=True, exist_ok=True)
    check.log = open(check.out / LOG, "w")
    try:
        for part in parts:
            record = run_part(check, part)
            check.records[part.key] = record
            (check.out / RESULTS[part.key]).write_text(json.dumps(record, indent=2) + "\n")
            (check.out / SUMMARY).write_text(summary(check, parts))
            check.note(f"   {part.key}: {record['status']}")
            if part.key == "setup":
                if record["status"] != "passed":
                    raise SetupFailed(record)
                for name, command in background_commands(check).items():
                    check.background(name, command)
    finally:
        check.stop_jobs()
        check.log.close()
    return all(r["status"] == "passed" for r in check.records.values())


class SetupFailed(Exception):
    def __init__(self, record: dict):
        probe = record.get("probe", {})
        why = (f"imports failed: {', '.join(record['broken_imports'])}" if record.get("broken_imports") else
               "no CUDA device visible to torch" if probe and not probe.get("cuda_available") else
               f"setup {record['status']}")
        super().__init__(f"setup failed ({why}); see setup.json and gpu_check.log")


# ---- summary.md ------------------------------------------------------------------------------

def summary(check: Check, parts: list[Part]) -> str:
    probe = check.records.get("setup", {}).get("probe", {})
    lines = ["# GPU check results", "",
             f"{probe.get('gpu', 'no GPU')} ({probe.get('gpu_memory_gib', '?')} GiB, driver {probe.get('driver')}), "
             f"{probe.get('cpus')} CPUs, Python {probe.get('python')}, torch {probe.get('torch')} (CUDA "
             f"{probe.get('cuda')}), timm {probe.get('modules', {}).get('timm')}; profile "
             f"{check.profile_name}; {check.elapsed():.0f} s in all. Command: `bash benchmarks/gpu_check.sh`; "
             f"`python` below is {probe.get('executable')}.", ""]
    for part in parts:
        record = check.records.get(part.key)
        if record is None:
            lines += [f"## {part.key}: {part.title}", "", "not run", ""]
            continue
        lines += [f"## {part.key}: {part.title} — {record['status']} ({record.get('seconds', 0):.0f} s)", ""]
        lines += [f"    {c}" for c in record["commands"]] + [""]
        lines += RENDER[part.key](record)
        if record.get("error"):
            lines += [f"error: {record['error']}", ""]
        if record.get("output_tail"):
            lines += ["last output lines:", "", *(f"    {t}" for t in record["output_tail"]), ""]
    return "\n".join(lines) + "\n"


def fmt(value, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def render_setup(record: dict) -> list[str]:
    modules = record.get("probe", {}).get("modules", {})
    return ["| module | version |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in modules.items()), ""]


def render_tests(record: dict) -> list[str]:
    c = record.get("counts", {})
    lines = [f"{c.get('passed', 0)} passed, {c.get('failed', 0)} failed, {c.get('error', 0)} errors, "
             f"{c.get('skipped', 0)} skipped", ""]
    return lines + [f"- {x['test']}: {x['outcome']} {x['message']}" for x in record.get("cases", [])
                    if x["outcome"] != "passed"] + [""]


def render_step(record: dict) -> list[str]:
    lines = []
    for backbone, t in record.get("backbones", {}).items():
        lines += [f"{backbone}, batch {t['batch']}, {t['size']} px, amp {t['amp']}, channels_last "
                  f"{t['channels_last']}, {t['device']}, median of {t['steps']} steps after {t['warmup']} warm-up, "
                  f"torch {t['torch']}; multi-task / bare images/s: {t['multitask_vs_bare_images_per_s']:.3f} "
                  f"(target ≥ 0.95)", "", "| row | s / step | × bare | images/s | peak MiB |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['row']} | {r['s_per_step']:.4f} | {r['x_bare']:.3f} | {fmt(r['images_per_s'])} | "
                  f"{fmt(r['peak_mib'])} |" for r in t["rows"]] + [""]
    return lines


def render_data(record: dict) -> list[str]:
    if "rows" not in record:
        return []
    lines = [f"{record['images_per_pass']} images per pass ({record['files']} JPEGs of {record['source_size']} px) "
             f"-> {record['size']} px, batch {record['batch']}, {record['workers']} workers, median of "
             f"{record['repeats']} passes, torch {record['torch']}", "",
             "| pipeline | images/s | per worker |", "| --- | ---: | ---: |"]
    lines += [f"| {r['pipeline']} | {fmt(r['images_per_s'])} | {fmt(r['images_per_s_per_worker'])} |"
              for r in record["rows"]] + [""]
    pipes = [r["pipeline"] for r in record["rows"]]
    lines += ["Loader images/s over the model's (b): above 1, the loader keeps up.", "",
              "| model (b) | " + " | ".join(pipes) + " |", "| --- |" + " ---: |" * len(pipes)]
    lines += [f"| {model} | " + " | ".join(f"{ratios[p]:.2f}" for p in pipes) + " |"
              for model, ratios in record.get("loader_over_model", {}).items()]
    return lines + [""]


def render_train(record: dict) -> list[str]:
    ends = record.get("epoch_end_seconds") or []
    final = record.get("final") or {}
    return ["| figure | value |", "| --- | ---: |",
            f"| training images per epoch | {fmt(record.get('images'))} |",
            f"| process start to end of epoch 1 (s; imports, data index, model, workers, eval included) | "
            f"{fmt(ends[0] if ends else None, 1)} |",
            f"| last epoch, train + eval (s) | {fmt(record.get('last_epoch_seconds'), 2)} |",
            f"| last epoch: images/s (its train images / its train + eval time) | {fmt(record.get('images_per_s'))} |",
            f"| GPU utilisation, mean over the last epoch (%) | {fmt(record.get('gpu_util_last_epoch'))} |",
            f"| GPU utilisation, mean over the whole process (%) | {fmt(record.get('gpu_util_whole_run'))} |",
            f"| GPU memory used, max (MiB, nvidia-smi) | {fmt(record.get('gpu_memory_used_mib_max'))} |",
            f"| whole process (s) | {fmt(record.get('process_seconds'), 1)} |",
            f"| eval dish/top1 after the last epoch | {fmt(final.get('dish/top1'), 3)} |", ""]


def render_ddp(record: dict) -> list[str]:
    lines = ["| strategy | exit | s | ranks (rank, world, backend, device) | steps | W&B offline runs |",
             "| --- | ---: | ---: | --- | ---: | ---: |"]
    lines += [f"| {r['strategy']} | {r['rc']} | {r['seconds']:.1f} | {'; '.join(' '.join(x) for x in r['ranks'])} | "
              f"{fmt(r['steps'])} | {r['wandb_offline_runs']} |" for r in record.get("runs", [])]
    return lines + [""]


RENDER = {"setup": render_setup, "a": render_tests, "b": render_step, "c": render_data, "d": render_train,
          "e": render_ddp}


# ---- dry run: the plan and what it needs -------------------------------------------------------

def required_wheels() -> dict[str, str]:
    specs = [line.split("#")[0].strip() for line in WHEEL_LIST.read_text().splitlines()]
    return {normal(name): version for name, _, version in (s.partition("==") for s in specs if s)}


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def fits_gpu_machine(tags: list[str]) -> bool:
    """Python 3.12 CPython on manylinux x86_64 (or pure Python)."""
    python, abi, platform = tags
    pythons = python.split(".")
    ok_python = any(p in ("py3", "cp312") for p in pythons) or (abi == "abi3" and any(
        p.startswith("cp3") and int(p[3:]) <= 12 for p in pythons))
    return ok_python and (platform == "any" or all("manylinux" in t and t.endswith("x86_64")
                                                   for t in platform.split(".")))


def wheel_problems(folder: Path) -> list[str]:
    """What keeps ``folder`` from installing the list on the GPU machine (empty: nothing)."""
    found: dict[str, list[str]] = {}
    problems = []
    for wheel in sorted(folder.glob("*.whl")):
        parts = wheel.name[:-4].split("-")
        if len(parts) not in (5, 6) or not zipfile.is_zipfile(wheel) or not fits_gpu_machine(parts[-3:]):
            problems.append(f"{wheel.name} is not a Python 3.12 manylinux x86_64 wheel")
            continue
        found.setdefault(normal(parts[0]), []).append(parts[1])
    for name, version in required_wheels().items():
        versions = found.get(name, [])
        if version not in versions:
            problems.append(f"{name}=={version} missing")
        if len(versions) > 1:
            problems.append(f"{name} in {len(versions)} versions ({', '.join(versions)}): keep {version}")
    return problems


def tree_mib(wheels: Path) -> float | None:
    """Size of what the device tool carries: git's tracked and untracked-not-ignored files, and .whl/."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                                check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        return None
    files = [ROOT / f for f in listed if f] + list(wheels.glob("*.whl"))
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def dry_run(check: Check, parts: list[Part]) -> list[str]:
    """Print the plan; return the problems that would stop the real run."""
    p = check.profile
    print(f"GPU check, profile {check.profile_name}: budget {p.budget_s} s (parts' caps add up to "
          f"{sum(p.caps.values())} s); results -> {check.out}; scratch -> {check.work}")
    for part in parts:
        print(f"\n{part.key}: {part.title} (at most {p.caps[part.key]} s)")
        if part.needs:
            print(f"  waits for the background job {part.needs}")
        for command in part.commands:
            print(f"  {command.shell()}")
        if part.key == "setup":
            for name, command in background_commands(check).items():
                print(f"  then in the background ({name}): {command.shell()}")
    print(f"\nresults: {', '.join([*RESULTS.values(), SUMMARY, LOG])}")
    problems = [f".whl/: {x}" for x in wheel_problems(check.wheel_dir)] if check.install else []
    if sum(p.caps.values()) > p.budget_s:
        problems.append(f"the parts' caps add up to {sum(p.caps.values())} s, over the {p.budget_s} s budget")
    size = tree_mib(check.wheel_dir)
    print(f"wheels: {len(check.wheels)} in {check.wheel_dir}; the tree that travels: "
          f"{'unknown (no git)' if size is None else f'{size:.1f} MiB'} of {TREE_LIMIT_MIB} MiB")
    if size is not None and size > TREE_LIMIT_MIB:
        problems.append(f"the tree that travels is {size:.1f} MiB, over {TREE_LIMIT_MIB} MiB")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan and check .whl/; run nothing")
    parser.add_argument("--probe", action="store_true", help="print the machine and package versions as JSON")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="gpu")
    parser.add_argument("--no-install", dest="install", action="store_false", help="use the installed packages")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl", help="folder of the carried wheels")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_check"),
                        help="scratch folder: data and runs go to a new folder in it")
    args = parser.parse_args(argv)
    if args.probe:
        print("PROBE " + json.dumps(probe()))
        return 0
    out = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "runs" / "gpu_check"
    work = args.work / time.strftime("%Y%m%d-%H%M%S")  # a rerun on a warm machine starts clean
    check = Check(args.profile, out, work, args.install, args.wheels)
    parts = plan(check)
    if args.dry_run:
        problems = dry_run(check, parts)
        if problems:
            print(f"error: {'; '.join(problems)} (make the wheels with: bash benchmarks/gpu_wheels.sh)", file=sys.stderr)
            return 2
        print("dry run: nothing was run")
        return 0
    problems = wheel_problems(args.wheels) if args.install else []
    if problems:
        print(f"error: .whl/: {'; '.join(problems)} (make them with: bash benchmarks/gpu_wheels.sh)", file=sys.stderr)
        return 2
    try:
        passed = execute_all(check, parts)
    except SetupFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\n{(check.out / SUMMARY).read_text()}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
