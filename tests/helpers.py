"""Small builders shared by tests: tiny saved models, prompts, batches, CPU training settings."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from kani_adapt import tokens
from kani_adapt.models.generator import checkpoint
from kani_adapt.models.generator.tokenizer import encode_text


def tiny_generator(alpha_init: str = "official", audio_step: float = 1.0, seed: int = 0):
    base, tok = checkpoint.build_base("tiny", seed=seed)
    model = checkpoint.convert_base(base, tok, alpha_init=alpha_init, audio_step=audio_step,
                                    seed=seed)
    # Random (non-identity) RoPE scales so that a wrong or missing scale changes the logits.
    with torch.no_grad():
        for rope in model.model.learnable_rope_layers:
            if rope is not None:
                rope.alpha_weight.uniform_(-2, 2)
    return model.eval(), tok


def example_batch(tok, n_frames=(5, 3), seed=0):
    """Two examples of different length with audio, as token-contract examples."""
    rng = np.random.default_rng(seed)
    texts = [("hello world", "en_glasgow"), ("guten tag", None)]
    return [
        tokens.build_example(encode_text(tok, text, tag),
                             rng.integers(0, tokens.CODEBOOK_SIZE, size=(n, 4)))
        for (text, tag), n in zip(texts, n_frames)
    ]


def copy_dir(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


# The generator schema's required keys, for tests that build a TrainConfig from overrides only.
REQUIRED = ["data.train=unused", "model.init=tiny"]


def cpu_overrides(run_dir, data, **extra):
    """Fast, deterministic CPU settings for tiny runs."""
    values = {
        "run_dir": run_dir, "data.train": data, "model.init": "tiny", "trainer.device": "cpu",
        "trainer.precision": "32-true", "trainer.max_steps": 4, "trainer.val_every": 4,
        "trainer.ckpt_every": 2, "trainer.log_every": 1, "sampling.max_frames": 3,
        "data.token_budget": 600, "optim.warmup_steps": 1, "optim.lr": 0.01,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def substitute_codec(monkeypatch, codec) -> list[str]:
    """The one way a test puts a codec double in place: every caller loads its codec through
    kani_adapt.codec.registry. Returns the codec references asked for, in order."""
    from kani_adapt.codec import registry

    asked: list[str] = []

    def factory(spec: str, device: str):
        asked.append(spec)
        return codec

    monkeypatch.setattr(registry, "CODEC_FACTORY", factory)
    return asked


def tb_tags(folder: Path, kind: str) -> list[str]:
    """The tags of one kind (scalars, audio, images) in the TensorBoard events under ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = []
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={kind: 0})
        acc.Reload()
        tags += acc.Tags().get(kind, [])
    return tags


def sampling_handed_on(monkeypatch) -> list:
    """The SamplingConfig of every generate() call that synthesis makes from now on (generation
    itself still runs): what `generate`, eval, training samples and recipe samples pass on."""
    from kani_adapt.models.generator import synthesize

    seen, real = [], synthesize.generate

    def spy(model, prompts, speakers, sampling, **kw):
        seen.append(sampling)
        return real(model, prompts, speakers, sampling, **kw)

    monkeypatch.setattr(synthesize, "generate", spy)
    return seen


def tiny_embedder_folder(dest: Path) -> Path:
    """A copy of the tiny speaker embedder (publisher's layout, fitted so that voices differ)."""
    from kani_adapt.models.speaker.tiny import cached_folder

    return copy_dir(cached_folder(), dest)
