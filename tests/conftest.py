"""Test-wide settings: never touch the network, keep CPU threads modest."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.pop("WANDB_API_KEY", None)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def synthfood_root(tmp_path_factory):
    """A tiny SynthFood set shared by the end-to-end tests (seconds to make)."""
    from foodmtl.synthfood.generate import generate_synthfood

    root = tmp_path_factory.mktemp("data") / "synthfood"
    generate_synthfood(root, dishes=6, per_dish=16, size=64, seed=0)
    return root
