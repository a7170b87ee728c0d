"""bf16 mixed precision, the default for real runs: one short run on CPU, and on CUDA where it exists."""
import json
import math

import pytest

from tests.helpers import REQUIRED
from kani_adapt.cli.main import main
from tests.helpers import cpu_overrides


@pytest.mark.parametrize("device", [  # a CPU bf16 step takes about 20 s here: the slow lane
    pytest.param("cpu", marks=pytest.mark.slow), pytest.param("cuda", marks=pytest.mark.gpu)])
def test_bf16_mixed_training_steps_give_finite_losses(tmp_path, synth_data, base_ckpt, device):
    run_dir = tmp_path / "bf16"
    args = cpu_overrides(run_dir, synth_data, **{
        "model.init": base_ckpt, "trainer.device": device,
        "trainer.precision": "bf16-mixed", "trainer.max_steps": 2, "trainer.val_every": 2,
        "model.gradient_checkpointing": "true"})
    assert main(["train", *args]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 2
    losses = {k: v for k, v in metrics["metrics"].items() if k.endswith("loss")}
    assert losses and all(math.isfinite(v) and v > 0 for v in losses.values()), losses


def test_gradients_are_clipped_by_global_norm_with_the_fused_optimizer():
    import torch

    from kani_adapt.config.load import load_config
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.module import GeneratorModule
    from tests.helpers import tiny_generator

    model, _ = tiny_generator()
    cfg = load_config(TrainConfig, None, [*REQUIRED, "mode=full", "trainer.precision=bf16-mixed"])
    module = GeneratorModule(cfg, model)
    optimizer = module.configure_optimizers()["optimizer"]
    assert optimizer.defaults["fused"]  # the combination Lightning's AMP plugin refuses to clip
    for p in module.parameters():
        p.grad = torch.full_like(p, 3.0)
    module.configure_gradient_clipping(optimizer, gradient_clip_val=0.5)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters()]))
    assert abs(float(norm) - 0.5) < 1e-3
