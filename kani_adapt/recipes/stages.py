"""The stages of a recipe. Each takes the recipe and returns a dict of what it produced; each is
resumable on its own (the data tools and both trainers resume from their own records)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kani_adapt.recipes.schema import Recipe


def synthesize(recipe: Recipe) -> dict:
    from kani_adapt.recipes.synth import synthesize as speak

    out = Path(recipe.work_dir) / recipe.synth.out
    speak(recipe.synth, out)
    return {"recordings": str(out)}


def speaker_model(recipe: Recipe) -> dict:
    """A tiny random speaker embedder for demos (speaker_embedder: tiny)."""
    from kani_adapt.models.speaker import embedder as speaker_embedder

    folder = Path(recipe.data.embed.model)
    if not (folder / "model.safetensors").exists():
        speaker_embedder.save(speaker_embedder.build(seed=0), folder)
    return {"speaker_embedder": str(folder)}


def prepare(recipe: Recipe) -> dict:
    from data_tools import prepare as pipeline

    out = pipeline.run(recipe.data)
    return {"dataset": str(Path(out) / "hf"), "manifest": str(Path(out) / "nemo_manifest.jsonl")}


def codec_check(recipe: Recipe) -> dict:
    from kani_adapt.codec.check import Thresholds, run_check, write_report
    from kani_adapt.codec.manifest import read_manifest
    from kani_adapt.codec.registry import load_codec
    from kani_adapt.devices import resolve

    clips = read_manifest(manifest_of(recipe))
    codec = load_codec(recipe.codec, resolve(recipe.device))
    reports = run_check({"codec": (recipe.codec, codec)}, clips, Thresholds(),
                        recipe.codec_check.max_clips, recipe.codec_check.max_seconds, seed=0)
    md, js = write_report(reports, Thresholds(), Path(recipe.work_dir) / "codec_check")
    return {"report": str(md), "verdict": reports["codec"]["verdict"]}


def codec_finetune(recipe: Recipe) -> dict:
    from kani_adapt.codec import train as codec_train
    from kani_adapt.config import dump_yaml

    cfg = recipe.codec_finetune
    run = Path(cfg.run_dir)
    if (run / "checkpoints" / "last.ckpt").is_file():
        codec_train.resume_run(run, [])
    else:
        if run.exists():  # an attempt that died before its first checkpoint
            import shutil
            shutil.rmtree(run)
        config = Path(recipe.work_dir) / "codec_finetune.yaml"
        dump_yaml(cfg, config)
        codec_train.start_run(config, [])
    out = Path(recipe.work_dir) / "codec" / "finetuned.nemo"
    codec_train.export_run(run, out)
    return {"codec": str(out)}


def train(recipe: Recipe) -> dict:
    from kani_adapt.training.fit import train as fit

    summary = fit(recipe.generator)
    return {"run_dir": summary["run_dir"], "steps": summary["steps"]}


def export(recipe: Recipe) -> dict:
    from kani_adapt.training.export import export_run

    run, out, result = Path(recipe.generator.run_dir), Path(recipe.work_dir) / "export", {}
    if recipe.export.merged:
        result["merged"] = str(export_run(run, out / "merged", merge=True,
                                          dtype=recipe.export.dtype)[0])
    if recipe.export.adapter and recipe.generator.mode == "lora":
        result["adapter"] = str(export_run(run, out / "adapter")[0])
    return result


def evaluate(recipe: Recipe, codec_path: str, merged: str) -> dict:
    """Base vs adapted on held-out speakers (and the replay set): work_dir/eval/."""
    from kani_adapt.recipes import evaluation

    return evaluation.run(recipe, codec_path, merged)


def sample(recipe: Recipe, codec_path: str, merged: str) -> dict:
    """Generate each sample text with the merged checkpoint and decode it to a WAV."""
    from kani_adapt.atomic import write_audio, write_text
    from kani_adapt.codec.registry import load_codec
    from kani_adapt.models.generator.checkpoint import load_checkpoint
    from kani_adapt.models.generator.generate import SamplingConfig
    from kani_adapt.models.generator.synthesize import synthesize

    from kani_adapt.devices import resolve

    s, device = recipe.sample, resolve(recipe.device)
    model, tokenizer = load_checkpoint(merged)
    model.to(device)
    codec = load_codec(codec_path, device)
    speaker = _speaker_embedding(recipe.generator.data.train, s.speaker)
    rows = synthesize(model, tokenizer, codec, s.texts, s.tag, speaker,
                      SamplingConfig(max_new_frames=s.max_frames, seed=s.seed))
    out = Path(recipe.work_dir) / "samples"
    written = []
    for i, row in enumerate(rows):
        path = out / f"sample_{i}.wav"
        write_audio(path, row.audio, row.sample_rate)
        written.append({"wav": str(path), "text": s.texts[i], "frames": len(row.codes),
                        "hit_length_cap": row.hit_length_cap})
    write_text(out / "samples.json", json.dumps(written, indent=2) + "\n")
    return {"samples": [w["wav"] for w in written]}


def manifest_of(recipe: Recipe) -> str:
    if recipe.codec_finetune is not None:
        return recipe.codec_finetune.train_manifest
    return str(Path(recipe.generator.data.train).parent / "nemo_manifest.jsonl")


def _speaker_embedding(dataset: str, speaker: str | None):
    from kani_adapt.errors import ConfigError
    from kani_adapt.training.data import load_table

    table = load_table(dataset)
    if "speaker_emb_mean" not in table.column_names:
        return None
    names = [str(s) for s in table["speaker"]]
    wanted = speaker or names[0]
    if wanted not in names:
        raise ConfigError(f"sample.speaker {wanted!r} is not in {dataset}; speakers: "
                          f"{', '.join(sorted(set(names))[:10])}")
    return np.asarray(table[names.index(wanted)]["speaker_emb_mean"], dtype=np.float32)
