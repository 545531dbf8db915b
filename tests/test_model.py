import pytest
import torch

from foodmtl.config import ModelConfig
from foodmtl.models.backbone import check_backbone_name, create_timm
from foodmtl.models.multitask import build_model
from foodmtl.utils.registry import UnknownNameError
from foodmtl.tasks import TaskSpec

TASKS = [TaskSpec("dish", "multiclass", ("a", "b", "c")), TaskSpec("ingredients", "multilabel", ("x", "y"))]


def test_heads_give_one_logit_per_class():
    model = build_model(ModelConfig(backbone="resnet18"), TASKS)
    out = model(torch.randn(2, 3, 64, 64))
    assert out.logits["dish"].shape == (2, 3)
    assert out.logits["ingredients"].shape == (2, 2)
    assert out.representation.shape == (2, model.backbone.num_features)


def test_unknown_backbone_lists_close_timm_names():
    with pytest.raises(UnknownNameError, match="resnet50"):
        check_backbone_name("resnet-50")


def test_pretrained_tag_is_accepted():
    """A tag names one of timm's weight sets for the architecture: kept (smp's tu- prefix dropped),
    built with that set's config; a tag timm lacks is refused with the ones it has."""
    assert check_backbone_name("resnet50.a1_in1k") == "resnet50.a1_in1k"
    assert check_backbone_name("tu-resnet50.a1_in1k") == "resnet50.a1_in1k"
    assert create_timm("resnet50.a1_in1k", False, None).pretrained_cfg["tag"] == "a1_in1k"
    with pytest.raises(UnknownNameError, match="resnet50.a1_in1k"):
        check_backbone_name("resnet50.a1_in2k")


def test_weights_from_a_local_file(tmp_path):
    source = create_timm("resnet18", False, None, num_classes=0)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    model = build_model(ModelConfig(backbone="resnet18", pretrained_file=str(tmp_path / "w.pth")), TASKS)
    loaded = model.backbone.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in source.state_dict().items())
