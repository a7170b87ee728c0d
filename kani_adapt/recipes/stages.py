"""The stages of a recipe. Each takes the recipe and returns a dict of what it produced; each is
resumable on its own (the data tools and both trainers resume from their own records)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from kani_adapt import dataset
from kani_adapt.core.errors import ConfigError
from kani_adapt.dataset import DatasetLayout
from kani_adapt.recipes.schema import Recipe, tiny_embedder


def synthesize(recipe: Recipe) -> dict:
    from kani_adapt.recipes.synth import synthesize as speak

    out = Path(recipe.work_dir) / recipe.synth.out
    speak(recipe.synth, out)
    return {"recordings": str(out)}


def speaker_model(recipe: Recipe) -> dict:
    """The tiny speaker embedder for demos (speaker_embedder: tiny), copied into the run folder."""
    from kani_adapt.models.speaker import embedder as speaker_embedder

    folder = tiny_embedder(recipe)
    if not (folder / "model.safetensors").exists():
        speaker_embedder.save(speaker_embedder.load(speaker_embedder.TINY), folder)
    return {"speaker_embedder": str(folder)}


def prepare(recipe: Recipe, strict: bool = False) -> dict:
    """The data tools' ``prepare``; ``lost``: the hours a stage switched off rejected."""
    from data_tools import prepare as pipeline
    from data_tools.preflight import decided

    layout = DatasetLayout(pipeline.run(recipe.data, strict=strict))
    lost = pipeline.losses(Path(recipe.data.work), decided(recipe.data))
    return {"dataset": str(layout.hf), "manifest": str(layout.nemo_manifest),
            "report": str(layout.report), **({"lost": lost} if lost else {})}


def codec_check(recipe: Recipe, codec_path: str) -> dict:
    from kani_adapt.codec.check import Thresholds, run_check, write_report
    from kani_adapt.codec.manifest import read_manifest
    from kani_adapt.codec.registry import load_codec
    from kani_adapt.core.devices import resolve

    clips = read_manifest(manifest_of(recipe))
    codec = load_codec(codec_path, resolve(recipe.device))
    out = Path(recipe.work_dir) / "codec_check"
    reports = run_check({"codec": (codec_path, codec)}, clips, Thresholds(),
                        recipe.codec_check.max_clips, recipe.codec_check.max_seconds, seed=0,
                        audio_dir=out / "wavs")
    md, js = write_report(reports, Thresholds(), out)
    return {"report": str(md), "verdict": reports["codec"]["verdict"]}


def codec_finetune(recipe: Recipe) -> dict:
    from kani_adapt.training.codec import train as codec_train
    from kani_adapt.config.load import dump_yaml

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
    out = finetuned_codec(recipe)
    codec_train.export_run(run, out)
    return {"codec": str(out)}


def finetuned_codec(recipe: Recipe) -> Path:
    """Where codec_finetune exports the codec it trained."""
    return Path(recipe.work_dir) / "codec" / "finetuned.nemo"


def train(cfg) -> dict:
    """Generator training with ``cfg`` (the recipe's, with the codec in effect)."""
    from kani_adapt.training.fit import train as fit

    summary = fit(cfg)
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


def evaluate(recipe: Recipe, settings, merged: str) -> dict:
    """Base vs adapted on held-out speakers (and the replay set): work_dir/eval/."""
    from kani_adapt.recipes import evaluation

    return evaluation.run(recipe, settings, merged)


def sample(recipe: Recipe, codec_path: str, merged: str) -> dict:
    """Generate each sample text with the merged checkpoint and decode it to a WAV."""
    from kani_adapt.core.atomic import write_audio, write_text
    from kani_adapt.codec.registry import load_codec
    from kani_adapt.models.generator.checkpoint import load_checkpoint
    from kani_adapt.models.generator.synthesize import synthesize

    from kani_adapt.core.devices import resolve

    s, device = recipe.sample, resolve(recipe.device)
    generator = load_checkpoint(merged)
    generator.model.to(device)
    codec = load_codec(codec_path, device)
    train = recipe.generator.data.train
    speaker = dataset.voice(dataset.read(train), s.speaker, where=f"sample.speaker ({train})")
    rows = synthesize(generator, codec, s.texts, s.tag, speaker, s.sampling)
    out = Path(recipe.work_dir) / "samples"
    written = []
    for i, (row, said) in enumerate(zip(rows, s.texts)):
        path = out / f"sample_{i}.wav"
        write_audio(path, row.audio, row.sample_rate)
        written.append(Sample(str(path), said, len(row.codes), row.hit_length_cap))
    write_text(out / "samples.json", json.dumps([asdict(w) for w in written], indent=2) + "\n")
    return {"samples": [w.wav for w in written]}


def prefer(cfg, merged: str) -> dict:
    """Preference rounds on the merged export (``cfg``: the recipe's prefer section with the
    codec in effect); each round's stages resume where an interrupted run stopped."""
    from kani_adapt.preference.rounds import run_configured

    if Path(str(cfg.policy)).resolve() != Path(merged).resolve():
        raise ConfigError(f"prefer.policy {cfg.policy}: the prefer stage samples from this run's "
                          f"merged export ({merged}); leave prefer.policy out of the recipe")
    summary = run_configured(cfg)
    return {"summary": str(Path(cfg.run_dir) / "summary.json"), "ship": summary["ship"]}


def sample_files(recipe: Recipe) -> list[Path]:
    """What the sample stage wrote in samples/ (others keep files there too)."""
    out = Path(recipe.work_dir) / "samples"
    return [out / "samples.json", *sorted(out.glob("sample_*.wav"))]


@dataclass
class Sample:
    """One line of samples/samples.json."""

    wav: str
    text: str
    frames: int
    hit_length_cap: bool


def manifest_of(recipe: Recipe) -> str:
    if recipe.codec_finetune is not None:
        return recipe.codec_finetune.train_manifest
    return str(DatasetLayout.of_table(recipe.generator.data.train).nemo_manifest)
