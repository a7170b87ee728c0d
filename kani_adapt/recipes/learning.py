"""The recipe's learn stage (:class:`kani_adapt.recipes.schema.LearnStage`): a few clips of the
training set taught to the base generator by heart, then the first said back.

The adapted model and its base each speak the clip's text with its tag and its speaker
embedding through the one text-to-audio path (:func:`synthesize`), greedily; each result is
compared with the clip's codec round trip: the clip's dataset codes (as training reads them)
decoded by the same codec, as the eval stage takes a dataset recording's round trip.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kani_adapt import dataset
from kani_adapt.core.errors import DataError
from kani_adapt.recipes.schema import Recipe

# How a handful of rows is learned by heart (the learning tests train so too): every row in
# one batch at every step, no speaker held out, no samples, no weight decay, a short warm-up
# and a cosine that ends low.
MEMORISING = {"data.val_speakers": 0, "data.num_workers": 0, "data.token_budget": 4096,
              "trainer.sample_prompts": 0, "optim.warmup_steps": 10, "optim.weight_decay": 0.0,
              "optim.min_lr_ratio": 0.05}
WAVS = ("adapted", "base", "roundtrip")  # samples/learned_<name>.wav


def folder(recipe: Recipe) -> Path:
    return Path(recipe.work_dir) / "learn"


def taught_table(recipe: Recipe) -> Path:
    """The table folder of the taught rows (a dataset of their own)."""
    return dataset.DatasetLayout(folder(recipe) / "taught").hf


def wav_paths(recipe: Recipe) -> dict[str, Path]:
    return {name: Path(recipe.work_dir) / "samples" / f"learned_{name}.wav" for name in WAVS}


def taught_rows(table, count: int) -> list[int]:
    """``count`` rows in table order, each with a text new to the rows before it and, while
    there are such rows, a speaker new to them as well (at most ``count``: no text twice)."""
    texts, speakers = [dataset.text(r) for r in table], dataset.speakers(table)
    chosen: list[int] = []
    for new_speaker in (True, False):
        for i, (text, speaker) in enumerate(zip(texts, speakers)):
            if len(chosen) == count:
                return chosen
            if text in {texts[j] for j in chosen} or (
                    new_speaker and speaker in {speakers[j] for j in chosen}):
                continue
            chosen.append(i)
    return chosen


def train_config(recipe: Recipe):
    """The generator's settings with the taught rows learned by heart: full fine-tuning (continued pretraining)
    from ``generator.model.init`` for ``learn.steps`` steps at ``learn.lr``, :data:`MEMORISING`,
    no scored speech, no replay, a progress line and a checkpoint halfway (the stage resumes
    from it). The LoRA and sampling sections are the defaults: changing the adaptation's does
    not redo this."""
    from kani_adapt.config.typed import from_dict
    from kani_adapt.config.load import to_dict
    from kani_adapt.eval.config import TrainingEvalConfig
    from kani_adapt.training.config import LoraConfig, TrainConfig, TrainingSampling

    steps = recipe.learn.steps
    values = {**MEMORISING, "run_dir": str(folder(recipe) / "generator"),
              "mode": "full", "codec": None, "data.train": str(taught_table(recipe)),
              "data.replay": None, "data.replay_ratio": 0.0, "data.text_dropout": 0.0,
              "optim.lr": recipe.learn.lr, "trainer.max_steps": steps,
              "trainer.val_every": steps, "trainer.log_every": max(steps // 2, 1),
              "trainer.ckpt_every": max(steps // 2, 1), "eval": asdict(TrainingEvalConfig()),
              "lora": asdict(LoraConfig()), "sampling": asdict(TrainingSampling())}
    raw = to_dict(recipe.generator)
    for dotted, value in values.items():
        *parents, key = dotted.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[key] = value
    return from_dict(TrainConfig, raw, where="learn")


def write_taught(recipe: Recipe, table, rows: list[int]) -> Path:
    """The taught rows as a dataset of their own (:func:`taught_table`), with the text frontend
    of the one they come from."""
    from kani_adapt.core import atomic
    from kani_adapt.text import frontend

    source = recipe.generator.data.train
    reading = frontend.read(dataset.DatasetLayout.of_table(source).root)
    taught = taught_table(recipe)

    def write(tmp: Path) -> None:
        table.select(rows).save_to_disk(str(dataset.DatasetLayout(tmp).hf))
        if reading is not None:
            frontend.write(tmp, reading)

    atomic.write_folder(dataset.DatasetLayout.of_table(taught).root, write)
    return taught


@dataclass
class Said:
    """What one model said for the clip, against the clip's codec round trip."""

    wav: str
    mel_distance: float  # kani_adapt.codec.metrics.mel_distance to the round trip (0: the same)
    frames_exact: int  # frames of the clip said exactly, each at its place
    frames: int  # frames generated
    hit_length_cap: bool


def learn(recipe: Recipe, codec_path: str) -> dict:
    """Teach, export, and have the adapted model and the base say the first taught clip."""
    from kani_adapt.core.atomic import write_text
    from kani_adapt.recipes.evaluation import starting_point
    from kani_adapt.recipes.stages import train
    from kani_adapt.training.export import export_run

    source = recipe.generator.data.train
    table = dataset.read(source)
    rows = taught_rows(table, recipe.learn.clips)
    if len(rows) < recipe.learn.clips:
        raise DataError(f"{source}: learn.clips is {recipe.learn.clips}, more than the dataset's "
                        f"{len(rows)} distinct texts; lower learn.clips")
    write_taught(recipe, table, rows)
    cfg = train_config(recipe)
    steps = train(cfg)["steps"]
    adapted = export_run(Path(cfg.run_dir), folder(recipe) / "merged", merge=True, dtype="fp32")[0]
    base = starting_point(cfg, folder(recipe) / "base")
    row = table[rows[0]]
    result = {"clip": clip_name(row, rows[0]), "text": dataset.text(row), "tag": dataset.tag(row),
              "speaker": str(row[dataset.SPEAKER]), "taught": [clip_name(table[i], i) for i in rows],
              "steps": steps, **say_back(recipe, cfg, row, {"adapted": str(adapted), "base": base},
                                         codec_path)}
    report = folder(recipe) / "learned.json"
    write_text(report, json.dumps(result, indent=2) + "\n")
    return {"report": str(report), "line": summary_line(result),
            "wavs": {name: str(path) for name, path in wav_paths(recipe).items()}}


def clip_name(row: dict, index: int) -> str:
    return str(row.get(dataset.SOURCE) or f"row {index}")


def taught_codes(row: dict, cfg) -> np.ndarray:
    """The clip's codes as training read them."""
    from kani_adapt import tokens

    codes = dataset.codes(row)
    return tokens.drop_repeated_frames(codes) if cfg.data.drop_repeated_frames else codes


def say_back(recipe: Recipe, cfg, row: dict, checkpoints: dict[str, str], codec_path: str) -> dict:
    """The round trip and what each checkpoint says for ``row``, written as WAVs; their figures."""
    from kani_adapt.core.atomic import write_audio
    from kani_adapt.codec.metrics import mel_distance
    from kani_adapt.codec.registry import load_codec
    from kani_adapt.core.devices import resolve
    from kani_adapt.models.generator.synthesize import decode_one

    device, wavs = resolve(cfg.trainer.device), wav_paths(recipe)
    codec = load_codec(codec_path, device)
    reference = taught_codes(row, cfg)
    roundtrip = decode_one(codec, reference)
    write_audio(wavs["roundtrip"], roundtrip, codec.sample_rate)
    out = {"roundtrip": {"wav": str(wavs["roundtrip"]), "frames": len(reference)}}
    for name, checkpoint in checkpoints.items():
        said = spoken(checkpoint, row, cfg, codec, recipe.learn.max_frames, device)
        write_audio(wavs[name], said.audio, said.sample_rate)
        out[name] = asdict(Said(str(wavs[name]), mel_distance(roundtrip, said.audio, codec.sample_rate),
                                frames_exact(said.codes, reference), len(said.codes),
                                said.hit_length_cap))
    return out


def spoken(checkpoint: str, row: dict, cfg, codec, max_frames: int, device: str):
    """What ``checkpoint`` says, greedily, for the row's text read as training read it, under
    its tag and with its speaker embedding (:func:`synthesize_ids`, decoded by ``codec``)."""
    from kani_adapt.config.sampling import greedy
    from kani_adapt.models.generator.checkpoint import load_checkpoint
    from kani_adapt.models.generator.synthesize import synthesize_ids
    from kani_adapt.models.generator.tokenizer import encode_text

    generator = load_checkpoint(checkpoint)
    generator = generator.with_model(generator.model.to(device))
    tag = dataset.tag(row, cfg.data.tag_column)
    text = generator.reads_with.apply(dataset.text(row), tag, dataset.text_override(row))
    voice = (dataset.speaker_embedding(row, cfg.data.speaker_emb_column)
             if cfg.data.use_speaker_emb else None)
    return synthesize_ids(generator, codec, [encode_text(generator.tokenizer, text, tag)], voice,
                          greedy(max_frames))[0]


def frames_exact(generated: np.ndarray, reference: np.ndarray) -> int:
    """How many of the reference's frames were generated exactly, each at its own index."""
    n = min(len(generated), len(reference))
    return int(np.all(generated[:n] == reference[:n], axis=1).sum()) if n else 0


def summary_line(result: dict) -> str:
    """One console line: whether the adapted model says the clip back, with both distances."""
    adapted, base, total = result["adapted"], result["base"], result["roundtrip"]["frames"]
    exact = adapted["frames_exact"] == total == adapted["frames"]
    said = (f"says clip {result['clip']!r} back" if exact
            else f"says {adapted['frames_exact']}/{total} frames of clip {result['clip']!r}")
    return (f"learned: the adapted generator {said} after {result['steps']} steps (mel distance "
            f"{adapted['mel_distance']:.2f} to its codec round trip, {adapted['frames_exact']}/"
            f"{total} frames exact; base {base['mel_distance']:.2f}, {base['frames_exact']}/{total})")
