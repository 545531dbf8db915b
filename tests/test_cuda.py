"""The CUDA paths, through the real entry points, on the tiny SynthFood; skipped without a GPU.

``pytest -m cuda tests/test_cuda.py`` (benchmarks/gpu_check.py part a). Every GPU run is checked
against the same run on this machine's CPU in fp32: the data order, augmentation and initial
weights do not depend on the device, so the per-step training losses and the direction of the
update must agree up to the rounding of bf16 / fp16 / TF32. A broken device path (labels or
gradients lost, no update, NaN) misses these by far more than the tolerances.
"""
import json
from pathlib import Path

import pytest
import torch

if torch.cuda.is_available():  # else every test skips, and collecting stays cheap (gpu_check's CPU smoke)
    from foodmtl.cli import main
    from foodmtl.config import load_config
    from foodmtl.engine.checkpoint import load_checkpoint
    from foodmtl.engine.trainer import Trainer, train
    from foodmtl.tracking.local import read_jsonl

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
TINY = Path(__file__).resolve().parents[1] / "experiments" / "synthfood" / "tiny.yaml"
STEPS = 3
BN_STATS = ("running_mean", "running_var", "num_batches_tracked")
STRATEGIES = {"uniform": [], "uncertainty": [], "pcgrad": ["weighting.options={rep_grad: true}"],
              "mgda": ["weighting.options={rep_grad: true}"]}


def overrides(root, out: Path, name: str, device: str, *extra: str) -> list[str]:
    """``STEPS`` steps with a checkpoint after each (the update direction is read from them)."""
    return [f"data.root={root}", f"output_dir={out}", f"run={name}", f"train.device={device}",
            f"train.max_steps={STEPS}", "train.checkpoint_every=1", f"train.keep_checkpoints={STEPS}",
            "tracking.wandb=disabled", "train.overlays=0", *extra]


def run(root, out: Path, name: str, device: str, *extra: str) -> Path:
    items = overrides(root, out, name, device, *extra)
    run_dir, _ = train(load_config(TINY, items), items)
    return run_dir


def losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["train/loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if "train/loss" in r}


def first_step_weights(run_dir: Path) -> dict[str, float]:
    """The strategy's task weights of step 1 (same weights and batch on both devices)."""
    first = next(r for r in read_jsonl(run_dir / "metrics.jsonl") if r["step"] == 1 and "train/loss" in r)
    return {k: v for k, v in first.items() if k.startswith("weight/")}


def weights(path: Path) -> torch.Tensor:
    state = load_checkpoint(path)["objective"]
    return torch.cat([v.float().flatten() for k, v in state.items()
                      if v.is_floating_point() and not k.endswith(BN_STATS)])


def update(run_dir: Path) -> torch.Tensor:
    """All weights after the last step minus after the first: the direction the run moved in."""
    folder = run_dir / "checkpoints"
    return weights(folder / f"step-{STEPS:08d}.pt") - weights(folder / "step-00000001.pt")


def assert_follows(run_dir: Path, reference: Path, rtol: float) -> None:
    """Same per-step losses within ``rtol``, and an update pointing the same way (cosine > 0.5;
    unrelated directions give about 0). bf16 rounding flips the sign of some tiny gradients, and
    Adam moves those weights by a full step, so the cosine stays below 1 even when all is right."""
    ours, theirs = losses(run_dir), losses(reference)
    assert sorted(ours) == sorted(theirs) == list(range(1, STEPS + 1))
    for step in ours:
        assert ours[step] == pytest.approx(theirs[step], rel=rtol), (step, ours, theirs)
    cosine = torch.nn.functional.cosine_similarity(update(run_dir), update(reference), dim=0)
    assert cosine > 0.5, float(cosine)


@pytest.fixture(scope="module")
def cpu_run(synthfood_root, tmp_path_factory):
    """The fp32 CPU reference of each strategy, trained once."""
    out, done = tmp_path_factory.mktemp("cpu"), {}

    def get(strategy: str) -> Path:
        if strategy not in done:
            done[strategy] = run(synthfood_root, out, strategy, "cpu", "train.amp=none",
                                 f"weighting.name={strategy}", *STRATEGIES[strategy])
        return done[strategy]
    return get


@pytest.fixture(scope="module")
def gpu_bf16(synthfood_root, tmp_path_factory):
    out, done = tmp_path_factory.mktemp("bf16"), {}

    def get(strategy: str) -> Path:
        if strategy not in done:
            done[strategy] = run(synthfood_root, out, strategy, "cuda", "train.amp=bf16",
                                 f"weighting.name={strategy}", *STRATEGIES[strategy])
        return done[strategy]
    return get


@pytest.fixture(scope="module")
def gpu_fp32(synthfood_root, tmp_path_factory):
    """fp32 (TF32 convolutions) with channels_last, uniform weighting; also what the eval, predict
    and resume tests read. The Trainer is kept to look at its tensors."""
    out = tmp_path_factory.mktemp("fp32")
    items = overrides(synthfood_root, out, "fp32", "cuda", "train.amp=none", "model.channels_last=true")
    trainer = Trainer(load_config(TINY, items), items)
    trainer.fit()
    return trainer


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_bf16_training_follows_the_fp32_cpu_run(strategy, gpu_bf16, cpu_run):
    """Loss-level (uniform, uncertainty) and gradient-level (pcgrad, mgda on the shared
    representation) strategies; for the latter the per-step task weights come from the
    gradients, so they are compared too."""
    gpu, cpu = gpu_bf16(strategy), cpu_run(strategy)
    assert_follows(gpu, cpu, rtol=0.03)
    if strategy in ("pcgrad", "mgda"):
        weights_gpu, weights_cpu = first_step_weights(gpu), first_step_weights(cpu)
        assert weights_gpu.keys() == weights_cpu.keys() and weights_gpu
        assert weights_gpu == pytest.approx(weights_cpu, abs=0.1)
    state = load_checkpoint(gpu / "checkpoints" / "last.pt")
    assert state["config"]["train"]["amp"] == "bf16" and state["config"]["train"]["device"] == "cuda"


def test_fp16_with_a_grad_scaler_follows_the_fp32_cpu_run(synthfood_root, tmp_path, cpu_run):
    gpu = run(synthfood_root, tmp_path, "fp16", "cuda", "train.amp=fp16", "weighting.name=uniform")
    assert_follows(gpu, cpu_run("uniform"), rtol=0.03)
    scaler = load_checkpoint(gpu / "checkpoints" / "last.pt")["scaler"]
    assert 0 < scaler["scale"] < float("inf")  # an enabled GradScaler saved its scale


def test_channels_last_model_trains_like_the_cpu_run(gpu_fp32, cpu_run):
    convs = [p for p in gpu_fp32.objective.parameters() if p.ndim == 4]
    assert convs and all(p.is_cuda and p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert_follows(gpu_fp32.run_dir, cpu_run("uniform"), rtol=0.01)


def test_gpu_eval_scores_the_checkpoint_as_the_cpu_does(gpu_fp32, tmp_path):
    """One eval image may flip its top-1 class between TF32 and fp32, no more."""
    checkpoint = gpu_fp32.run_dir / "checkpoints" / "last.pt"
    assert main(["eval", str(checkpoint), "--json", str(tmp_path / "gpu.json")]) == 0
    assert main(["eval", str(checkpoint), "--cpu", "--json", str(tmp_path / "cpu.json")]) == 0
    gpu, cpu = (json.loads((tmp_path / f"{d}.json").read_text()) for d in ("gpu", "cpu"))
    assert gpu.keys() == cpu.keys()
    one_image = 1.01 / len(gpu_fp32.eval_loader.dataset)
    assert gpu == pytest.approx(cpu, abs=one_image)
    # What training reported is what eval gives (training fed channels_last inputs, eval does not:
    # other kernels, so a near tie may still flip).
    summary = json.loads((gpu_fp32.run_dir / "summary.json").read_text())
    assert summary["final"] == pytest.approx(gpu, abs=one_image)


def test_gpu_predict_gives_the_cpu_probabilities(gpu_fp32, synthfood_root, tmp_path, capsys):
    checkpoint = gpu_fp32.run_dir / "checkpoints" / "last.pt"
    images = [str(p) for p in sorted((synthfood_root / "food101" / "images").rglob("*.jpg"))[:4]]
    records = {}
    for where, flag in (("gpu", []), ("cpu", ["--cpu"])):
        assert main(["predict", str(checkpoint), *images, *flag]) == 0
        records[where] = json.loads(capsys.readouterr().out)
    for gpu, cpu in zip(records["gpu"], records["cpu"]):
        for task in ("dish", "category", "cuisine"):
            gpu_probs, cpu_probs = ({e["name"]: e["prob"] for e in r[task]} for r in (gpu, cpu))
            common = gpu_probs.keys() & cpu_probs.keys()
            assert len(common) >= len(gpu_probs) - 1  # the last of the top-k may swap with a near tie
            assert {n: gpu_probs[n] for n in common} == pytest.approx({n: cpu_probs[n] for n in common}, abs=5e-3)


def test_a_gpu_checkpoint_resumes_on_the_gpu_and_on_the_cpu(gpu_fp32, tmp_path):
    """From step 2 of the GPU run: step 3 again, on each device."""
    source = gpu_fp32.run_dir / "checkpoints" / "step-00000002.pt"
    state = load_checkpoint(source, map_location="cpu")
    assert all(v.device.type == "cpu" for v in state["objective"].values())
    original = losses(gpu_fp32.run_dir)
    for device, rtol in (("cuda", 1e-3), ("cpu", 1e-2)):
        items = [f"resume={source}", f"run=resumed-{device}", f"output_dir={tmp_path}", f"train.device={device}",
                 "tracking.wandb=disabled"]
        run_dir, _ = train(load_config(TINY, items), items)
        resumed = losses(run_dir)
        assert sorted(resumed) == [3]
        assert resumed[3] == pytest.approx(original[3], rel=rtol), (device, resumed, original)
        assert json.loads((run_dir / "summary.json").read_text())["steps"] == STEPS


def test_compiled_model_trains_like_the_eager_one(synthfood_root, tmp_path, gpu_bf16):
    """Last in the file: compiling takes the longest, and a timed-out check then loses only this."""
    compiled = run(synthfood_root, tmp_path, "compiled", "cuda", "train.amp=bf16", "train.compile=true")
    assert_follows(compiled, gpu_bf16("uniform"), rtol=0.03)
    eager_keys = load_checkpoint(gpu_bf16("uniform") / "checkpoints" / "last.pt")["objective"].keys()
    assert load_checkpoint(compiled / "checkpoints" / "last.pt")["objective"].keys() == eager_keys
