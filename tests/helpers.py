"""Small builders shared by tests: tiny saved models, prompts, batches."""
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
