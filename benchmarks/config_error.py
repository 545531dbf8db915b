"""Seconds from starting ``foodmtl train`` to its ``error:`` line, for config mistakes and for
``model.pretrained=true`` without a network.

Each case starts the real console script (``.venv/bin/foodmtl``, next to this Python) in a
fresh process, as a user would, and stops the clock when the ``error:`` line arrives on
stderr; the median of ``--repeats`` runs is reported, cases taking turns so that changes in
machine load hit them alike. Two reference rows: a bare interpreter start, and the old order
(``import foodmtl.engine.trainer`` before reading the config: what a typo cost before the
config was checked first); ``--before`` adds plain timm with ``pretrained=True`` and no
network (what that cost before foodmtl/models/pretrained.py) and foodmtl's ``create_timm``
in the same process setting, so the two differ only in how the missing hub is handled.
The pretrained rows build a tiny SynthFood in a temporary folder first, because the trainer
reads the data before it builds the model:

    .venv/bin/python benchmarks/config_error.py --repeats 7 --before
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOODMTL = str(Path(sys.executable).with_name("foodmtl"))
DEMO = "experiments/synthfood/demo.yaml"

TYPOS = {
    "typo'd key": ["train.epoch=3"],
    "bad type": ["train.epochs=abc"],
    "unknown strategy": ["weighting.name=pcgard"],
    "unknown backbone": ["model.backbone=resnet-50"],
    "unknown dataset": ["data.dataset=food-101"],
    "unknown decoder": ["model.decoder=deeplab"],
}
# What model.pretrained=true cost without a network before foodmtl/models/pretrained.py.
HUB_RETRIES = ("import timm\ntry: timm.create_model('resnet18', pretrained=True)\n"
               "except Exception as exc: print('error:', type(exc).__name__, file=__import__('sys').stderr)")
FAIL_FAST = ("from foodmtl.models.backbone import create_timm\ntry: create_timm('resnet18', True, None)\n"
             "except Exception as exc: print('error:', type(exc).__name__, file=__import__('sys').stderr)")
OLD_ORDER = ("import foodmtl.engine.trainer; from foodmtl.cli import main; "
             f"main(['train', '{DEMO}', 'train.epoch=3'])")


def time_to_error(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Seconds until the process prints a line starting with ``error:`` (or exits), and that line."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = ""
    for line in proc.stderr:
        if line.startswith("error:"):
            break
    elapsed = time.perf_counter() - start
    proc.stderr.close()
    proc.wait()
    return elapsed, line.strip()


def cases(data_root: Path | None, before: bool) -> dict[str, tuple[list[str], dict[str, str]]]:
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
    online = {k: v for k, v in offline.items() if k != "HF_HUB_OFFLINE"}
    out = {"python start (reference)": ([sys.executable, "-c", "pass"], offline),
           "old order: trainer imported first (reference)": ([sys.executable, "-c", OLD_ORDER], offline)}
    out |= {name: ([FOODMTL, "train", DEMO, *overrides], offline) for name, overrides in TYPOS.items()}
    if data_root is not None:
        pretrained = [FOODMTL, "train", DEMO, "model.pretrained=true", f"data.root={data_root}",
                      f"output_dir={data_root.parent / 'runs'}", "tracking.wandb=disabled", "data.num_workers=0",
                      "data.batch_size=4"]
        out["pretrained, HF_HUB_OFFLINE=1, no cache"] = (pretrained, offline)
        out["pretrained, no network, no cache"] = (pretrained, online)
    if before:
        out["before: timm pretrained=True, no network"] = ([sys.executable, "-c", HUB_RETRIES], online)
        out["after: create_timm pretrained=True, no network"] = ([sys.executable, "-c", FAIL_FAST], online)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-pretrained", action="store_true", help="skip the (slower) pretrained rows")
    parser.add_argument("--before", action="store_true",
                        help="add plain timm, pretrained=True, no network (~47 s a run: huggingface_hub's retries)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_root = None
        if not args.no_pretrained:
            from foodmtl.synthfood.generate import generate_synthfood
            data_root = generate_synthfood(Path(tmp) / "synthfood", dishes=12, per_dish=4, size=32)
        todo = cases(data_root, args.before)
        times: dict[str, list[float]] = {name: [] for name in todo}
        lines: dict[str, str] = {}
        for _ in range(args.repeats):
            for name, (command, env) in todo.items():
                seconds, lines[name] = time_to_error(command, env)
                times[name].append(seconds)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"median of {args.repeats} runs; {os.cpu_count()} CPUs; load average after the runs {load}\n")
    print("| case | s to `error:` (median) | min | max | error line |\n| --- | ---: | ---: | ---: | --- |")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | "
              f"{lines[name][:90]} |")


if __name__ == "__main__":
    main()
