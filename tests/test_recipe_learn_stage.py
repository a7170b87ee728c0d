"""The recipe's learn stage, its fast parts: on in the demo only, placed where changing the
adaptation or the samples does not redo it, trained as the learning tests memorise, taught
clips chosen with texts (and voices) of their own, and a console line that claims only what
the figures show. The demo's end-to-end test (tests/test_recipes.py) runs it for real."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kani_adapt import dataset
from kani_adapt.core.errors import DataError
from kani_adapt.recipes import learning, runner
from kani_adapt.recipes.schema import load_recipe, recipe_files

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_the_learn_stage_is_on_in_the_demo_only():
    for path in recipe_files(RECIPES):
        recipe = load_recipe(path)
        assert recipe.learn.enabled == (recipe.name == "demo"), path


def test_it_runs_before_the_adaptation_and_decodes_as_the_samples_do():
    demo = load_recipe(RECIPES / "demo" / "demo.yaml")
    names = [s.name for s in runner.plan(demo, {})]
    assert names[names.index("codec_finetune") + 1:] == ["learn", "train", "export", "eval", "sample"]
    codecs = runner.codecs_in_effect(demo)
    assert codecs["learn"] == codecs["sample"] == str(Path(demo.work_dir) / "codec" / "finetuned.nemo")
    assert "learn" not in runner.codecs_in_effect(load_recipe(RECIPES / "demo" / "demo.yaml",
                                                              ["learn.enabled=false"]))
    stage = next(s for s in runner.plan(demo, {}) if s.name == "learn")
    samples = Path(demo.work_dir) / "samples"
    assert set(stage.outputs) == {Path(demo.work_dir) / "learn", samples / "learned_adapted.wav",
                                  samples / "learned_base.wav", samples / "learned_roundtrip.wav"}
    sample = next(s for s in runner.plan(demo, {}) if s.name == "sample")
    assert samples not in sample.outputs  # a redone sample stage leaves the learned WAVs alone


def test_it_memorises_from_the_generators_base_as_the_learning_tests_do():
    demo = load_recipe(RECIPES / "demo" / "demo.yaml", ["learn.steps=40", "learn.lr=0.01"])
    cfg = learning.train_config(demo)
    assert cfg.mode == "full" and cfg.model.init == demo.generator.model.init == "tiny"
    assert cfg.run_dir == str(Path(demo.work_dir) / "learn" / "generator")
    assert cfg.data.train == str(Path(demo.work_dir) / "learn" / "taught" / "hf")
    assert cfg.data.replay is None
    assert (cfg.trainer.max_steps, cfg.optim.lr, cfg.trainer.ckpt_every) == (40, 0.01, 20)
    assert cfg.eval.prompts == 0 and cfg.codec is None  # nothing scored while it learns
    assert (cfg.trainer.seed, cfg.trainer.device, cfg.trainer.precision) == (
        demo.generator.trainer.seed, demo.generator.trainer.device, demo.generator.trainer.precision)
    lora = load_recipe(RECIPES / "demo" / "demo.yaml", ["generator.lora.r=4",
                                                         "generator.sampling.max_frames=9"])
    assert learning.train_config(lora) == learning.train_config(load_recipe(RECIPES / "demo" / "demo.yaml"))
    for dotted, value in learning.MEMORISING.items():
        section, key = dotted.split(".")
        assert getattr(getattr(cfg, section), key) == value, dotted


def _table(lines):
    rows = [dataset.make_row(text, "de", np.zeros((3, 4), int), speaker, np.ones(128), np.ones(128),
                             0.24, f"{speaker}/{i}") for i, (text, speaker) in enumerate(lines)]
    return dataset.to_table(rows)


def test_taught_clips_have_new_texts_and_new_speakers_while_there_are_any():
    table = _table([("a", "anna"), ("b", "anna"), ("a", "ben"), ("c", "ben"), ("d", "cara"),
                    ("e", "anna")])
    assert learning.taught_rows(table, 3) == [0, 3, 4]  # a/anna, c/ben, d/cara
    assert learning.taught_rows(table, 5) == [0, 3, 4, 1, 5]  # then new texts of known speakers
    assert learning.taught_rows(table, 9) == [0, 3, 4, 1, 5]  # no text twice


def test_too_few_texts_for_the_clips_asked_is_one_error_before_any_training(tmp_path):
    data = tmp_path / "data" / "hf"
    _table([("a", "anna"), ("a", "ben")]).save_to_disk(str(data))
    recipe = load_recipe(RECIPES / "demo" / "demo.yaml", [f"work_dir={tmp_path / 'work'}",
                                                          f"dataset={data}"])
    with pytest.raises(DataError, match=r"learn.clips is 3, more than the dataset's 1 distinct texts"):
        learning.learn(recipe, "tiny")
    assert not (tmp_path / "work" / "learn" / "generator").exists()


def _result(adapted_exact, adapted_frames, base_exact=0):
    said = lambda exact, frames, distance: {"mel_distance": distance, "frames_exact": exact,  # noqa: E731
                                            "frames": frames}
    return {"clip": "de/anna_000", "steps": 120, "roundtrip": {"frames": 29},
            "adapted": said(adapted_exact, adapted_frames, 0.0), "base": said(base_exact, 100, 0.6)}


def test_the_line_says_a_clip_back_only_when_every_frame_is_said_and_nothing_more():
    line = learning.summary_line(_result(29, 29))
    assert line == ("learned: the adapted generator says clip 'de/anna_000' back after 120 steps "
                    "(mel distance 0.00 to its codec round trip, 29/29 frames exact; base 0.60, 0/29)")
    assert "says 28/29 frames of clip" in learning.summary_line(_result(28, 29))
    assert "says 29/29 frames of clip" in learning.summary_line(_result(29, 40))  # it ran on
