"""The training step and generation do not make the host wait for the device."""
import pytest
import torch

from kani_adapt import tokens
from kani_adapt.config.load import load_config
from kani_adapt.models.generator.batch import collate
from kani_adapt.models.generator.generate import STOP_CHECK_EVERY, generate
from kani_adapt.config.sampling import SamplingConfig
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.module import GeneratorModule
from tests.helpers import REQUIRED, example_batch, tiny_generator
from tests.models.host_syncs import HostSyncCounter


@pytest.mark.parametrize("mode,checkpointing", [("lora", True), ("lora", False),
                                                ("continue_pretrain", True)])
def test_a_training_step_reads_nothing_back_from_the_device(mode, checkpointing):
    model, tok = tiny_generator()
    cfg = load_config(TrainConfig, None, [*REQUIRED, f"mode={mode}",
                                          f"model.gradient_checkpointing={checkpointing}"])
    module = GeneratorModule(cfg, model).train()
    optimizer = module.configure_optimizers()["optimizer"]
    batch = collate(example_batch(tok), torch.randn(2, 128))  # padded: rows differ in length

    def step():
        loss = module.training_step(batch, 0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.net.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    step()  # the first step creates the optimiser state
    with HostSyncCounter() as syncs:
        step()
    assert syncs.total == 0, syncs.sites.most_common(5)
    assert module._meter.flush()["loss"] > 0  # what was summed on the device is read here


def test_generation_reads_the_device_only_every_few_steps():
    model, tok = tiny_generator()
    prompts = [tokens.prompt_ids(tok("hello there").input_ids[:4]) for _ in range(2)]
    frames = 6
    with HostSyncCounter() as syncs:
        rows = generate(model, prompts, None, SamplingConfig(max_frames=frames, seed=0))
    ours = sum(n for site, n in syncs.sites.items() if "/kani_adapt/" in site)
    steps = frames * tokens.TOKENS_PER_FRAME
    assert len(rows) == 2
    # The stop flag every STOP_CHECK_EVERY steps, and reading the results back once.
    assert ours <= steps // STOP_CHECK_EVERY + 3, syncs.sites.most_common(5)
