"""Pretrained weights without a network: taken from the local cache, else an immediate error
that names ``model.pretrained_file`` (never a minute of retries)."""
import socket

import pytest
import timm
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from foodmtl.errors import ConfigError
from foodmtl.models.backbone import create_timm

HUB_ID = timm.models.get_pretrained_cfg("resnet18").hf_hub_id  # timm/resnet18.a1_in1k


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache in tmp_path (huggingface_hub reads the constant at each call)."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


@pytest.fixture
def no_network(monkeypatch):
    """Offline mode off, and the hub endpoint a local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def cache_weights(cache, state: dict) -> None:
    """``state`` as the cached ``model.safetensors`` of HUB_ID, in huggingface_hub's cache layout."""
    repo = cache / f"models--{HUB_ID.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(repo / "snapshots" / commit / "model.safetensors"))


def test_offline_mode_without_cached_weights_names_pretrained_file(cache):
    assert constants.HF_HUB_OFFLINE  # tests/conftest.py
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE is set; give local weights with "
                                          "model.pretrained_file=/path/weights.safetensors"):
        create_timm("resnet18", True, None, num_classes=0)


def test_unreachable_hub_without_cached_weights_names_pretrained_file(cache, no_network):
    with pytest.raises(ConfigError, match=r"does not answer .*model\.pretrained_file="):
        create_timm("resnet18", True, None, num_classes=0)
    assert constants.HF_HUB_OFFLINE is False  # offline mode only around the download


def test_unreachable_hub_takes_cached_weights(cache, no_network):
    torch.manual_seed(1)
    reference = timm.create_model("resnet18")
    cache_weights(cache, reference.state_dict())
    model = create_timm("resnet18", True, None, num_classes=0)
    assert torch.equal(model.conv1.weight, reference.conv1.weight)


def test_missing_pretrained_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^model\.pretrained_file=.*nope\.safetensors: no such file$"):
        create_timm("resnet18", False, str(tmp_path / "nope.safetensors"), num_classes=0)


def test_backbone_names_smp_prefix_and_bad_tag():
    from foodmtl.models.backbone import check_backbone_name
    from foodmtl.utils.registry import UnknownNameError

    assert check_backbone_name("tu-resnet18.a1_in1k") == "resnet18.a1_in1k"
    with pytest.raises(UnknownNameError, match="pretrained tag of resnet18 'resnet18.a1in1k'; did you mean: "
                                               "resnet18.a1_in1k"):
        check_backbone_name("resnet18.a1in1k")
