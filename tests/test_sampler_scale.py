"""ResumableSampler at a million samples: the order agrees with torch's DistributedSampler, a
resume from its O(1) state is exact (also with mixed-source weights), and the state does not
grow with the data set; the data-index benchmark runs end to end."""
import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from foodmtl.data.sampler import ResumableSampler

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("length, world", [(10, 1), (11, 3), (1000, 4), (5, 8)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_order_is_torch_distributed_samplers(length, world, shuffle):
    for epoch in (0, 3):
        for rank in range(world):
            ours = ResumableSampler(length, shuffle=shuffle, seed=5, rank=rank, world=world)
            ours.set_epoch(epoch)
            theirs = DistributedSampler(range(length), num_replicas=world, rank=rank, shuffle=shuffle, seed=5)
            theirs.set_epoch(epoch)
            assert [index for index, _ in ours] == list(theirs)
            assert len(ours) == len(theirs)


def test_augmentation_seeds_follow_the_position_in_the_epoch():
    sampler = ResumableSampler(10, shuffle=True, seed=2, rank=1, world=2)
    sampler.set_epoch(1)
    # position p of epoch 1 with seed 2: 2 * 1_000_003 + 7_919 * 104_729 + p = 2_000_006 + 829_348_951 + p
    assert [seed for _, seed in sampler] == [831_348_957 + p for p in (1, 3, 5, 7, 9)]


def mixed_weights(first: int, second: int, share: float) -> torch.Tensor:
    """Per-sample odds of two sources, the second drawn ``share`` of the time (as build_data does)."""
    return torch.cat([torch.full((first,), (1 - share) / first, dtype=torch.float64),
                      torch.full((second,), share / second, dtype=torch.float64)])


@pytest.mark.parametrize("weighted", [False, True])
def test_resume_mid_epoch_is_exact_at_a_million_samples(weighted):
    weights = mixed_weights(700_000, 300_000, 0.75) if weighted else None
    uninterrupted = ResumableSampler(1_000_000, shuffle=True, seed=7, rank=1, world=2, weights=weights)
    uninterrupted.set_epoch(4, skip=123_457)
    state = uninterrupted.state_dict()
    uninterrupted.set_epoch(4)
    full = list(uninterrupted)
    resumed = ResumableSampler(1_000_000, shuffle=True, seed=0, rank=1, world=2, weights=weights)
    resumed.load_state_dict(state)
    assert list(resumed) == full[123_457:]
    assert len(resumed) == len(full) - 123_457 == 500_000 - 123_457
    if weighted:  # the draws keep the configured source shares
        second = sum(index >= 700_000 for index, _ in full) / len(full)
        assert second == pytest.approx(0.75, abs=0.005)


def saved_bytes(state: dict) -> int:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes


def test_resume_state_does_not_grow_with_the_data_set():
    sizes = []
    for length in (1_000, 1_000_000):
        sampler = ResumableSampler(length, shuffle=True, seed=1, weights=mixed_weights(length // 2, length // 2, 0.5))
        sampler.set_epoch(3, skip=length // 3)
        next(iter(sampler))
        sizes.append(saved_bytes(sampler.state_dict()))
        assert set(sampler.state_dict()) == {"seed", "epoch", "skip"}
    assert sizes[1] <= sizes[0] + 16 < 2_000  # a few bytes for wider ints; the order alone would be 8 MB


def test_data_index_benchmark_runs_and_prints_its_row(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "data_index.py"), "--images", "200",
                           "--classes", "20", "--workers", "2", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| 200 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) == 11 and cells[-2] == str(saved_bytes({"seed": 3, "epoch": 5, "skip": 60}))  # 120 train images
