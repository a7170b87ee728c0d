"""Every recipe's generator section trains: one real step of it on the tiny model (CPU, fp32)."""
from dataclasses import replace
from pathlib import Path

import pytest

from kani_adapt.recipes.schema import load_recipe, recipe_files
from kani_adapt.training.fit import train

REPO = Path(__file__).resolve().parents[2]
RECIPES = recipe_files(REPO / "recipes")


def test_the_recipe_folder_is_found():
    assert len(RECIPES) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(REPO / "recipes")))
def test_recipe_generator_section_runs_a_training_step(path, tmp_path, synth_data):
    recipe = load_recipe(path, [f"work_dir={tmp_path / 'work'}"])
    cfg = recipe.generator
    # The recipe's own choices (mode, LoRA layers, checkpointing, loss slices, optimiser
    # groups, replay mixing) stay; only what needs a download, a GPU or hours is shrunk.
    cfg.run_dir = str(tmp_path / "run")
    cfg.model.init = "tiny"
    cfg.codec = None
    # the eval callback decodes and transcribes speech: it needs the codec and ASR set aside here
    cfg.eval.prompts = cfg.eval.base_prompts = 0
    cfg.eval.stop_on_forgetting = ""
    cfg.data.train = str(synth_data)
    if cfg.data.replay:
        cfg.data.replay = str(synth_data)
    cfg.data.token_budget, cfg.data.val_speakers, cfg.data.num_workers = 600, 1, 0
    t = cfg.trainer
    t.device, t.precision, t.gpus_per_node, t.num_nodes, t.strategy = "cpu", "32-true", 1, 1, "auto"
    t.max_steps = t.val_every = t.ckpt_every = t.log_every = 1
    cfg.sampling = replace(cfg.sampling, max_frames=2)
    summary = train(cfg)
    assert summary["steps"] == 1
    assert summary["metrics"]["train/loss"] > 0
