"""The objective axis: ``objective`` (what a step optimises) beside ``mode`` (which weights train).

A second objective is one module plus one registry entry: the run builds its batches, steps on
its loss, validates with its figures and measures the token budget on its probe batch."""
import json

import pytest
import torch

from kani_adapt.cli.main import main
from kani_adapt.config.load import load_config, load_saved_config
from kani_adapt.core.errors import ConfigError
from kani_adapt.models.generator.batch import collate
from kani_adapt.training import budget
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.module import GeneratorModule
from kani_adapt.training.objectives import registry, sft
from tests.helpers import REQUIRED, cpu_overrides, example_batch, tiny_generator
from tests.training import weighted_objective


@pytest.fixture
def weighted(monkeypatch):
    monkeypatch.setitem(registry.OBJECTIVES, "weighted", "tests.training.weighted_objective")
    weighted_objective.CALLS.clear()
    return weighted_objective


def test_the_default_objective_is_sft_and_an_unknown_one_is_one_line():
    assert load_config(TrainConfig, None, REQUIRED).objective == "sft"
    with pytest.raises(ConfigError, match="'dpo_typo' is not a training objective; choose from sft"):
        load_config(TrainConfig, None, [*REQUIRED, "objective=dpo_typo"])


def test_the_former_mode_name_gives_a_hint_and_an_old_run_folder_reads_it(tmp_path):
    with pytest.raises(ConfigError, match="mode: 'continue_pretrain' is now called 'full'"):
        load_config(TrainConfig, None, [*REQUIRED, "mode=continue_pretrain"])
    saved = tmp_path / "config.yaml"
    saved.write_text("mode: continue_pretrain\ndata: {train: x}\nmodel: {init: tiny}\n")
    assert load_saved_config(TrainConfig, saved).mode == "full"


def test_the_module_steps_on_its_objectives_loss(weighted):
    model, tok = tiny_generator()
    batch = collate(example_batch(tok), torch.randn(2, 128))
    cfg = load_config(TrainConfig, None, [*REQUIRED, "mode=full", "objective=weighted"])
    module = GeneratorModule(cfg, model)
    plain = GeneratorModule(load_config(TrainConfig, None, [*REQUIRED, "mode=full"]), model)
    assert plain.objective is sft.OBJECTIVE and module.objective is weighted.OBJECTIVE
    with torch.no_grad():
        ours = module.training_step(batch, 0)
        theirs = plain.training_step(batch, 0)
    assert not torch.isclose(ours, theirs)  # another loss, not the supervised one
    assert module.meter.flush()["weighted_marker"] == weighted.SCALE
    # the token-budget probe measures the objective's own batch
    probe = module.objective.probe_batch(module, 512, 100)
    assert probe["input_ids"].shape == (5, 100) and weighted.CALLS[-1] == "probe_batch"


@pytest.mark.slow
def test_a_run_with_a_second_objective_builds_its_batches_steps_and_validates_with_it(
        weighted, tmp_path, synth_data):
    run = tmp_path / "run"
    assert main(["train", *cpu_overrides(run, synth_data, **{"objective": "weighted",
                                                               "trainer.max_steps": 2,
                                                               "trainer.val_every": 2})]) == 0
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert metrics["train/weighted_marker"] == weighted.SCALE
    assert "val/loss" in metrics and "val/loss_cb0" not in metrics  # its figures, not sft's
    calls = weighted.CALLS
    assert calls[0] == "data" and calls.count("training_loss") == 2 and "losses" in calls


def test_measuring_a_step_uses_the_objectives_probe_batch(weighted, monkeypatch):
    """measure_step asks the objective for its batch (CUDA-free: the measurement is mocked)."""
    model, _ = tiny_generator()
    cfg = load_config(TrainConfig, None, [*REQUIRED, "objective=weighted"])
    module = GeneratorModule(cfg, model)
    seen = []
    monkeypatch.setattr(module.objective, "probe_batch",
                        lambda m, b, longest: seen.append((b, longest)) or {})
    monkeypatch.setattr(budget.torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(budget.torch.cuda, "reset_peak_memory_stats", lambda *a: None)
    monkeypatch.setattr(budget.torch.cuda, "memory_allocated", lambda *a: 0)
    monkeypatch.setattr(budget.torch.cuda, "max_memory_allocated", lambda *a: 7)
    monkeypatch.setattr(budget.torch.cuda, "empty_cache", lambda: None)

    class Plugin:
        def forward_context(self):
            import contextlib
            return contextlib.nullcontext()

    class Trainer:
        precision_plugin = Plugin()

    monkeypatch.setattr(GeneratorModule, "trainer", property(lambda self: Trainer()))
    monkeypatch.setattr(module, "training_step", lambda batch, i: torch.zeros((), requires_grad=True))
    assert budget.measure_step(module, 1024, 64) == 7 and seen == [(1024, 64)]
