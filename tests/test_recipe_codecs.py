"""The codec in effect: the recipe's plan decides once which codec each stage uses, records it in
stages.json, and a recipe that fine-tunes its codec decodes everything the generator says with
the fine-tuned one (training samples included)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kani_adapt.recipes import runner, stages
from kani_adapt.recipes.schema import load_recipe
from tests.helpers import substitute_codec, tb_tags
from tests.models.test_synthesize import FrameCodecProtocol

FINETUNE = "codec_finetune: {mode: decoder, discriminators: [], max_steps: 1}\n"


def recipe_file(tmp_path, dataset, extra: str = "") -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(
        f"name: r\nwork_dir: {tmp_path / 'work'}\ncodec: base-codec\ndataset: {dataset}\n"
        "codec_check: {enabled: false}\neval: {enabled: false}\n"
        "generator:\n  model: {init: tiny}\n  data: {token_budget: 600, val_speakers: 1, num_workers: 0}\n"
        "  trainer: {device: cpu, precision: 32-true, max_steps: 1, val_every: 1, ckpt_every: 1,"
        " log_every: 1, sample_prompts: 1}\n  sampling: {max_frames: 3}\n" + extra)
    return path


def test_without_a_fine_tune_every_stage_uses_the_recipes_codec(tmp_path):
    recipe = load_recipe(recipe_file(tmp_path, "d"))
    assert set(runner.codecs_in_effect(recipe).values()) == {"base-codec"}


def test_with_a_fine_tune_what_decodes_speech_uses_the_fine_tuned_codec(tmp_path):
    recipe = load_recipe(recipe_file(tmp_path, "d", FINETUNE + "data: {ingest: {sources: [{path: rec}]}}\n"))
    fine = str(tmp_path / "work" / "codec" / "finetuned.nemo")
    assert str(stages.finetuned_codec(recipe)) == fine  # where codec_finetune exports it
    assert runner.codecs_in_effect(recipe) == {
        "prepare": "base-codec", "codec_check": "base-codec", "codec_finetune": "base-codec",
        "train": fine, "eval": fine, "sample": fine}
    planned = {s.name: s for s in runner.plan(recipe, {})}
    assert planned["train"].config.codec == planned["train"].codec == fine
    assert planned["codec_finetune"].config.codec == "base-codec"  # it starts from the base


def test_a_stages_own_codec_wins(tmp_path):
    recipe = load_recipe(recipe_file(tmp_path, "d", FINETUNE), ["eval.codec=mine"])
    assert runner.codecs_in_effect(recipe)["eval"] == "mine"
    assert runner.codecs_in_effect(recipe)["train"].endswith("finetuned.nemo")


@pytest.mark.slow
def test_a_recipe_with_a_codec_fine_tune_decodes_its_training_samples_with_it(tmp_path, synth_data,
                                                                            monkeypatch):
    recipe = load_recipe(recipe_file(tmp_path, synth_data, FINETUNE))
    asked = substitute_codec(monkeypatch, FrameCodecProtocol())
    [train] = [s for s in runner.plan(recipe, {}) if s.name == "train"]
    assert train.run()["steps"] == 1
    assert asked == [str(tmp_path / "work" / "codec" / "finetuned.nemo")]
    audio = tb_tags(tmp_path / "work" / "generator" / "tb", "audio")
    assert audio and all(tag.startswith("samples/audio_") for tag in audio)  # decoded, logged


def test_stages_json_records_the_codec_of_each_stage(tmp_path, monkeypatch):
    from kani_adapt.recipes import preflight

    monkeypatch.setattr(preflight, "CHECKS", [])  # "d" and "base-codec" are names, not files
    recipe = load_recipe(recipe_file(tmp_path, "d", FINETUNE))
    ran = []
    for name in ("codec_finetune", "train", "export"):
        monkeypatch.setattr(stages, name, lambda *a, name=name: ran.append(name) or {"merged": "m"})
    runner.run_recipe(recipe, log=lambda line: None)
    state = json.loads((tmp_path / "work" / runner.STATE).read_text())
    assert ran == ["codec_finetune", "train", "export"]
    fine = str(tmp_path / "work" / "codec" / "finetuned.nemo")
    assert {k: v.get("codec") for k, v in state.items()} == {
        "codec_finetune": "base-codec", "train": fine, "export": None}
