"""Process-group backend and per-rank device: FOODMTL_DIST_BACKEND, several ranks on one GPU."""
from pathlib import Path

import pytest
import torch

from foodmtl.cli import main
from foodmtl.errors import ConfigError
from foodmtl.engine.distributed import BACKEND_ENV, dist_backend, init_distributed, pick_device, use_cudnn_benchmark

TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"
CUDA0 = torch.device("cuda", 0)  # a device object needs no GPU until a tensor is put on it


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``n`` GPUs."""
    def set_count(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    return set_count


@pytest.mark.parametrize("count, local_rank, expected", [(1, 0, 0), (1, 1, 0), (2, 1, 1), (2, 3, 1)])
def test_local_ranks_take_the_gpus_in_turn(gpus, count, local_rank, expected):
    gpus(count)
    assert pick_device("cuda", local_rank) == torch.device("cuda", expected)
    assert pick_device("auto", local_rank) == torch.device("cuda", expected)
    assert pick_device("cpu", local_rank) == torch.device("cpu")


def test_default_backend_is_nccl_on_gpu_and_gloo_on_cpu(gpus, monkeypatch):
    gpus(1)
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert dist_backend(CUDA0) == "nccl"
    assert dist_backend(torch.device("cpu")) == "gloo"


def test_gloo_can_be_forced_for_cuda_tensors_and_lets_ranks_share_a_gpu(gpus, monkeypatch):
    gpus(1)
    monkeypatch.setenv(BACKEND_ENV, "GLOO")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert dist_backend(CUDA0) == "gloo"


def test_nccl_with_more_local_ranks_than_gpus_is_refused_with_the_fix(gpus, monkeypatch):
    gpus(1)
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=f"2 ranks share 1 GPU.*{BACKEND_ENV}=gloo"):
        dist_backend(CUDA0)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert dist_backend(CUDA0) == "nccl"


@pytest.mark.parametrize("value, message", [("mpi", "expected gloo or nccl"), ("nccl", "needs a GPU per rank")])
def test_a_bad_backend_setting_is_a_config_error(gpus, monkeypatch, value, message):
    gpus(0)
    monkeypatch.setenv(BACKEND_ENV, value)
    with pytest.raises(ConfigError, match=message):
        dist_backend(torch.device("cpu"))


def test_the_cli_reports_a_bad_backend_in_one_line_before_joining_a_group(monkeypatch, capsys, tmp_path):
    """A 2-rank environment without torchrun: the check runs before init_process_group would wait."""
    monkeypatch.setenv(BACKEND_ENV, "mpi")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    code = main(["train", str(TINY), f"output_dir={tmp_path}", "train.device=cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == f"error: {BACKEND_ENV}=mpi: expected gloo or nccl"
    assert not any("Traceback" in line for line in err)


def test_cuda_asked_for_on_a_machine_without_it_is_one_error_line_before_any_folder(gpus, capsys, tmp_path):
    gpus(0)
    code = main(["train", str(TINY), f"output_dir={tmp_path}", "train.device=cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: train.device=cuda but torch sees no CUDA device")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("setting, device, expected", [
    (None, CUDA0, True), (None, torch.device("cpu"), False),  # default: on with CUDA only
    (False, CUDA0, False), (True, CUDA0, True)])
def test_cudnn_benchmark_is_on_by_default_with_cuda_and_the_config_key_wins(setting, device, expected):
    assert use_cudnn_benchmark(setting, device) is expected


@pytest.mark.parametrize("setting, expected", [(None, False), (True, True)])
def test_init_distributed_sets_the_cudnn_autotuner(monkeypatch, setting, expected):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", not expected)  # restored after the test
    init_distributed("cpu", setting)
    assert torch.backends.cudnn.benchmark is expected
