import pytest
import torch

from foodmtl.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_with_weights_only(tmp_path):
    state = {"objective": {"w": torch.ones(2)}, "config": {"train": {"epochs": 1}}, "tasks": [{"name": "dish"}]}
    save_checkpoint(state, tmp_path / "last.pt")
    loaded = load_checkpoint(tmp_path / "last.pt")
    assert torch.equal(loaded["objective"]["w"], torch.ones(2))
    assert list(tmp_path.iterdir()) == [tmp_path / "last.pt"]  # no temp file left behind


def test_pickled_code_is_refused(tmp_path):
    torch.save({"objective": {}, "config": {}, "fn": torch.nn.Linear(1, 1)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")


def test_truncated_file_names_the_path(tmp_path):
    save_checkpoint({"objective": {"w": torch.randn(1000)}, "config": {}}, tmp_path / "last.pt")
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(tmp_path / "last.pt")


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(CheckpointError, match="foodmtl train"):
        load_checkpoint(tmp_path / "nope.pt")
