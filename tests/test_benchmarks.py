"""The speed benchmarks run end to end with tiny arguments (their targets live in docs/benchmarks.md)."""
import subprocess
import sys
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
