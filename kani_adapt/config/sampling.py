"""How the generator samples: one section, the same in every schema that generates speech.

``kani-adapt generate`` (one flag per field, built from the fields), evaluation
(``eval.sampling``), the samples and scored speech of a training run (the training schema's
``sampling``) and a recipe's samples (``sample.sampling``) fill this one dataclass, and
generation (:func:`kani_adapt.models.generator.generate.generate`) reads it whole. A new setting
(the classifier-free guidance of ``cfg_scale`` and ``cfg_frames``, say) is one field here, with
its range and its one line of help, and reaches every caller (``generate --help`` included)
without touching them. Light: no torch, safe on the --help path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

from kani_adapt.config.shared import Seed
from kani_adapt.core.errors import ConfigError


def setting(default, help: str):
    """A sampling field: its default, and what it does in one line (``generate --help``)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = setting(0.7, "0 = greedy")
    top_p: float = setting(0.95, "nucleus sampling mass")
    repetition_penalty: float = setting(1.1, "above 1 discourages tokens already in the row")
    max_frames: int = setting(500, "the length cap (12.5 frames per second; 500: 40 s, the "
                                   "pretraining limit)")
    seed: Optional[Seed] = setting(None, "the same seed gives the same speech; none: a fresh "
                                         "seed every time")
    constrain_audio: bool = setting(True, "sample only the expected codebook's tokens (and EOS at "
                                          "frame ends); off: the whole vocabulary, as the "
                                          "official runtime")
    # Onset-only classifier-free guidance: over the first cfg_frames frames, logits become
    # cond + (cfg_scale - 1) * (cond - uncond); the unconditional branch is the same prompt
    # without its text (kani_adapt.models.generator.generate). 0 frames: off.
    cfg_scale: float = setting(1.0, "onset-only classifier-free guidance strength (1 = none)")
    cfg_frames: int = setting(0, "frames from the start that guidance covers (0 = off)")
    RANGES: ClassVar[dict] = {"temperature": ">= 0", "top_p": "(0, 1]",
                              "repetition_penalty": "> 0", "max_frames": ">= 1",
                              "cfg_scale": ">= 0", "cfg_frames": ">= 0"}

    def __post_init__(self):  # built in code as well as by the loader (which checks RANGES)
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.repetition_penalty <= 0:
            raise ConfigError("need temperature >= 0, 0 < top_p <= 1, repetition_penalty > 0")
        if self.max_frames < 1:
            raise ConfigError("max_frames must be at least 1")
        if self.cfg_scale < 0 or self.cfg_frames < 0:
            raise ConfigError("need cfg_scale >= 0 and cfg_frames >= 0")


@dataclass(frozen=True)
class SeededSampling(SamplingConfig):
    """Sampling that always starts from a seed: evaluations and samples are repeatable (the
    schemas' ``sampling`` sections have this type; only the defaults differ)."""

    seed: Seed = 0


# What a checkpoint's generation_config.json can set (kani_adapt.models.generator.checkpoint).
FROM_CHECKPOINT = ("temperature", "top_p", "repetition_penalty", "max_frames")


def defaults() -> dict:
    """The values generation falls back to where nothing else sets one."""
    return {key: getattr(SamplingConfig(), key) for key in FROM_CHECKPOINT}


def layered(given: dict, from_checkpoint: dict, where: str = "sampling") -> SamplingConfig:
    """``given`` (the user's values; None: not set), else the checkpoint's, else the defaults,
    checked by the loader."""
    from kani_adapt.config.typed import from_dict

    values = {**from_checkpoint, **{k: v for k, v in given.items() if v is not None}}
    return from_dict(SamplingConfig, values, where=where)


def greedy(max_frames: int) -> SamplingConfig:
    """Always the most likely token, nothing discouraged, seeded: what saying a memorised row
    back is measured with (the recipes' learn stage)."""
    return SamplingConfig(temperature=0.0, top_p=1.0, repetition_penalty=1.0,
                          max_frames=max_frames, seed=0)


def rollout(temperature: float, top_p: float, max_frames: int, seed: int, cfg_scale: float,
            cfg_frames: int) -> SamplingConfig:
    """Preference rollouts: no repetition penalty (it would hide the loops the rejected side of
    a pair must show), the rest as the prefer config's sample section says."""
    return SamplingConfig(temperature=temperature, top_p=top_p, repetition_penalty=1.0,
                          max_frames=max_frames, seed=seed, cfg_scale=cfg_scale,
                          cfg_frames=cfg_frames)
