"""Test-wide settings: never touch the network, keep CPU threads modest."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.pop("WANDB_API_KEY", None)

import pytest  # noqa: E402
import torch  # noqa: E402

# Two threads per test process, one when pytest-xdist runs a worker per core (make test: two on two
# cores): a worker's OpenMP threads would otherwise wait on each other's barriers. Subprocesses
# (torchrun, `python -m foodmtl`) inherit the same count unless a test sets its own.
THREADS = max(1, min(2, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
os.environ["OMP_NUM_THREADS"] = str(THREADS)
torch.set_num_threads(THREADS)


@pytest.fixture(scope="session")
def synthfood_root(tmp_path_factory):
    """A tiny SynthFood set shared by the end-to-end tests (seconds to make)."""
    from foodmtl.synthfood.generate import generate_synthfood

    root = tmp_path_factory.mktemp("data") / "synthfood"
    generate_synthfood(root, dishes=6, per_dish=16, size=64, seed=0)
    return root


# The files whose tests start many processes (torchrun, `python -m foodmtl`), longest first, roughly by
# the CPU seconds their tests took with one thread per process (as under -n 2) on the 2-core dev machine.
# pytest-xdist's loadfile hands out whole files in collection order, so these go first and the many
# short files fill the end: otherwise one worker runs a long file alone while the other idles
# (longest-processing-time-first scheduling). A stale list only costs time, never a result.
LONGEST_FIRST = ("test_preemption.py", "test_benchmarks.py", "test_resume.py", "test_diagnostics.py",
                 "test_sweep.py", "test_distributed.py", "test_tuning.py", "test_ema.py", "test_eval_exact.py",
                 "test_instances_ddp.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order
