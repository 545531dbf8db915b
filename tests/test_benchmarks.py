"""The speed benchmarks run end to end with tiny arguments (their targets live in docs/benchmarks.md),
and the prepared GPU check (benchmarks/gpu_check.sh) plans, refuses and runs without a GPU."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script, args, rows", [
    ("step.py", ["--backbone", "resnet10t", "--batch", "2", "--size", "32", "--steps", "1", "--warmup", "0",
                 "--threads", "1"],
     ["| bare timm + linear |", "| multi-task (4 heads) |", "| multi-task + segmentation |"]),
    ("data.py", ["--size", "32", "--images", "16", "--batch", "4", "--repeats", "1"],
     ["| foodmtl |", "| foodmtl, full-size decode |", "| torchvision |", "ratio foodmtl / torchvision"]),
])
def test_benchmark_runs_and_prints_its_rows(script, args, rows):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert all(row in proc.stdout for row in rows), proc.stdout


GPU_CHECK = ["bash", str(BENCHMARKS / "gpu_check.sh")]


def gpu_check(*args: str, out=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OUT"} | {"PYTHON": sys.executable}
    if out is not None:
        env["OUT"] = str(out)
    return subprocess.run([*GPU_CHECK, *args], capture_output=True, text=True, env=env, timeout=1500)


def fake_wheels(folder: Path, skip: str = "", extra_version: str = "") -> Path:
    """One small valid zip per line of gpu_wheels.txt, named as the real wheels are."""
    folder.mkdir()
    for line in (BENCHMARKS / "gpu_wheels.txt").read_text().splitlines():
        spec = line.split("#")[0].strip()
        if not spec:
            continue
        name, version = spec.split("==")
        versions = [version, extra_version] if extra_version and name == skip else [version]
        for v in versions if name != skip or extra_version else []:
            with zipfile.ZipFile(folder / f"{name.replace('-', '_')}-{v}-py3-none-any.whl", "w") as z:
                z.writestr(f"{name}/__init__.py", "")
    return folder


def test_gpu_check_dry_run_lists_the_parts_and_their_commands_without_a_gpu(tmp_path):
    proc = gpu_check("--dry-run", "--wheels", str(fake_wheels(tmp_path / "whl")), out=tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for expected in ["python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade "
                     "--target /tmp/site whl/*.whl",
                     "python -m pytest -m cuda", "tests/test_cuda.py",
                     "benchmarks/step.py --backbone resnet50 --batch 128 --size 224 --amp bf16 --channels-last "
                     "--device cuda", "benchmarks/step.py --backbone convnext_tiny",
                     "benchmarks/data.py --size 224 --source-size 512", "--workers 14", "--decode-device cuda",
                     "data_prep/make_synthfood.py --overwrite --out", "--dishes 100 --per-dish 24 --size 224",
                     "-m foodmtl train experiments/synthfood/demo.yaml", "train.device=cuda train.amp=bf16",
                     "FOODMTL_DIST_BACKEND=gloo python -m torch.distributed.run --standalone --nproc_per_node=2 "
                     "-m foodmtl train", "budget 470 s", "dry run: nothing was run"]:
        assert expected in text, expected
    assert [line.split(":")[0] for line in text.splitlines() if re.match(r"^(setup|[a-e]): ", line)] == \
        ["setup", "a", "b", "d", "c", "e"]
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_gpu_check_dry_run_names_missing_and_doubled_wheels_in_one_line(tmp_path):
    missing = gpu_check("--dry-run", "--wheels", str(fake_wheels(tmp_path / "a", skip="wandb")))
    doubled = gpu_check("--dry-run", "--wheels", str(fake_wheels(tmp_path / "b", skip="omegaconf",
                                                                   extra_version="2.3.0")))
    for proc, what in ((missing, "wandb==0.31.0 missing"), (doubled, "omegaconf in 2 versions (2.3.0, 2.4.0)")):
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and what in proc.stderr
    real_run = gpu_check("--wheels", str(tmp_path / "a"), out=tmp_path / "out")  # refused before anything runs
    assert real_run.returncode == 2 and "wandb==0.31.0 missing" in real_run.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_gpu_check_runs_every_part_on_the_cpu_and_writes_every_result(tmp_path):
    """The smoke profile: the same code with tiny sizes on the CPU. The CUDA tests skip, the
    other parts measure, and summary.md holds each part's table with its command."""
    out = tmp_path / "out"
    proc = gpu_check("--profile", "smoke", "--no-install", "--work", str(tmp_path / "work"), out=out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["setup.json", "a_cuda_tests.json", "b_step.json", "c_data.json", "d_train.json", "e_ddp.json", "summary.md",
         "gpu_check.log"])
    records = {p.stem.split("_")[0]: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert records["a"]["status"] == "skipped (no CUDA device)" and records["a"]["counts"]["skipped"] > 0
    assert proc.returncode == 1  # not every part passed: a skipped
    for part in "bcde":
        assert records[part]["status"] == "passed", (part, records[part].get("output_tail"))
    rows = records["b"]["backbones"]["resnet10t"]["rows"]
    assert [r["row"] for r in rows] == ["bare timm + linear", "multi-task (4 heads)", "multi-task + segmentation"]
    assert all(r["images_per_s"] == pytest.approx(4 / r["s_per_step"]) for r in rows)
    assert {r["pipeline"] for r in records["c"]["rows"]} >= {"foodmtl", "torchvision", "decode_jpeg on cpu"}
    train = records["d"]
    assert train["images_per_s"] == pytest.approx(train["last_epoch_steps"] * 8 / train["last_epoch_seconds"])
    assert train["last_epoch_steps"] == train["images"] // 8  # full batches of one epoch
    (ddp,) = records["e"]["runs"]
    assert ddp["ranks"] == [["0", "2", "gloo", "cpu"], ["1", "2", "gloo", "cpu"]] and ddp["wandb_offline_runs"] == 1
    summary = (out / "summary.md").read_text()
    for command in ["python benchmarks/step.py --backbone resnet10t", "python benchmarks/data.py",
                    "python -m foodmtl train", "FOODMTL_DIST_BACKEND=gloo python -m torch.distributed.run"]:
        assert command in summary


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", BENCHMARKS / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_gpu_check_times_the_last_epoch_and_averages_gpu_use_over_it(tmp_path):
    """nvidia-smi cannot run here: a hand-made log and samples. The train command started at
    t=100 s; its epoch lines came 10 s and 14 s later, 14 steps of 128 images apart, so the last
    epoch is 4 s, 1792 images, 448 images/s, and only the samples at 111 s and 113 s fall in it."""
    g = load_gpu_check()
    check = g.Check("gpu", tmp_path / "out", tmp_path / "work", False, tmp_path / "whl")
    log = [(10.0, "INFO foodmtl.engine.trainer: epoch 1/2, step 14: train loss 1.2, dish/top1 0.1"),
           (14.0, "INFO foodmtl.engine.trainer: epoch 2/2, step 28: train loss 0.9, dish/top1 0.2")]
    samples = [(105.0, 10.0, 1000.0), (111.0, 80.0, 2000.0), (113.0, 90.0, 3000.0), (120.0, 0.0, 500.0)]
    record = g.collect_train(check, [g.Outcome("train", 0, 100.0, 30.0, log)], samples)
    assert record["status"] == "passed"
    assert (record["last_epoch_seconds"], record["last_epoch_steps"]) == (4.0, 14)
    assert record["images_per_s"] == pytest.approx(448.0)
    assert record["gpu_util_last_epoch"] == pytest.approx(85.0)
    assert record["gpu_util_whole_run"] == pytest.approx(45.0)
    assert record["gpu_memory_used_mib_max"] == 3000.0


def test_gpu_check_counts_tests_from_the_verbose_lines_of_a_killed_pytest(tmp_path):
    g = load_gpu_check()
    check = g.Check("gpu", tmp_path / "out", tmp_path / "work", False, tmp_path / "whl")
    lines = ["tests/test_cuda.py::test_bf16_training_follows_the_fp32_cpu_run[uniform] PASSED [ 10%]",
             "tests/test_cuda.py::test_fp16_with_a_grad_scaler_follows_the_fp32_cpu_run FAILED [ 20%]",
             "tests/test_cuda.py::test_gpu_eval_scores_the_checkpoint_as_the_cpu_does ERROR [ 30%]"]
    record = g.collect_tests(check, [g.Outcome("pytest", None, 0.0, 150.0, [(1.0, x) for x in lines])])
    assert record["status"] == "timed out"
    assert record["counts"] == {"passed": 1, "failed": 1, "error": 1, "skipped": 0}


def test_regression_baseline_is_the_training_mean_scored_on_the_test_split(synthfood_root):
    """Checked against the released files directly: Food-101 split lists and Nutrition5k's dish CSV."""
    spec = importlib.util.spec_from_file_location("regression_baseline", BENCHMARKS / "regression_baseline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from foodmtl.config import load_config

    cfg = load_config(None, [f"data.root={synthfood_root}", "data.dataset=synthfood", "tasks=[dish,mass,calories]"])
    rows = module.mean_predictor(cfg)
    csv = (synthfood_root / "nutrition5k" / "metadata" / "dish_metadata_cafe1.csv").read_text().splitlines()
    totals = {line.split(",")[0].removeprefix("dish_"): line.split(",")[1:3] for line in csv}  # calories, mass
    validation = set((synthfood_root / "val.txt").read_text().split())  # listed in train.txt, not trained on
    for task, column in (("calories", 0), ("mass", 1)):
        split = {name: [float(totals[line.split("/")[1]][column])
                        for line in (synthfood_root / "food101" / "meta" / f"{name}.txt").read_text().split()
                        if line not in validation]
                 for name in ("train", "test")}
        mean = sum(split["train"]) / len(split["train"])
        mae = sum(abs(v - mean) for v in split["test"]) / len(split["test"])
        assert rows[task]["n_eval"] == len(split["test"])
        assert rows[task]["mae"] == pytest.approx(mae, rel=1e-6)
        assert rows[task]["mae_pct"] == pytest.approx(100 * mae / (sum(split["test"]) / len(split["test"])), rel=1e-6)
