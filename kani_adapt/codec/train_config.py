"""The codec fine-tuning config: one typed schema, filled by `kani_adapt.config.load_config`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Optional

from kani_adapt.defaults import NANOCODEC_HUB_ID
from kani_adapt.errors import ConfigError

# Keys that may change when a run is resumed: they do not alter what a step computes.
RESUMABLE_KEYS = ("max_steps", "val_every", "ckpt_every")


@dataclass
class LoraConfig:
    r: int = 8  # per conv (capped by the conv's group size)
    alpha: float = 8.0  # delta scale = alpha / r
    transposed: bool = True  # also adapt the up-sampling ConvTranspose1d layers
    RANGES: ClassVar[dict] = {"r": ">= 1", "alpha": "> 0"}
    RENAMED: ClassVar[dict] = {"rank": "r"}  # the generator's LoRA section names it r


@dataclass
class OptimConfig:
    lr: float = 2e-5  # fine-tuning rate (NanoCodec pretraining used 2e-4)
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    lr_decay: float = 0.9999  # ExponentialLR gamma per batch; 1.0 keeps the rate constant
    grad_clip: Optional[float] = None  # gradient norm clip; None: no clipping
    RANGES: ClassVar[dict] = {"lr": "> 0", "betas": "[0, 1)", "lr_decay": "(0, 1]", "grad_clip": "> 0"}
    RENAMED: ClassVar[dict] = {"clip_grad_norm": "grad_clip"}  # as the generator's optim.grad_clip


@dataclass
class CodecTrainConfig:
    train_manifest: str = ""  # NeMo manifest (JSON lines); required
    val_manifest: Optional[str] = None  # fixed validation clips; default: train_manifest
    run_dir: str = "runs/codec"  # receives config.yaml, checkpoints/, tb/, metrics.jsonl
    codec: str = NANOCODEC_HUB_ID  # .nemo, hub id or size name
    mode: Literal["decoder", "full", "lora"] = "decoder"
    discriminators: list[str] = field(default_factory=lambda: ["mpd", "mrd"])  # [] = none
    slm_dir: Optional[str] = None  # local WavLM folder to keep an SLM discriminator
    max_steps: int = 1000  # batches (each batch steps the generator and the discriminator once)
    batch_size: int = 8
    segment_seconds: float = 1.0  # random crop per clip, rounded up to whole codec frames
    seed: int = 0
    val_every: int = 200  # batches between validations (losses, audio, spectrograms)
    val_clips: int = 4
    val_seconds: float = 4.0
    ckpt_every: int = 200  # batches between checkpoints (the last batch always saves)
    workers: int = 0  # DataLoader workers
    accelerator: str = "auto"  # cpu, gpu or auto
    precision: str = "32-true"
    lora: LoraConfig = field(default_factory=LoraConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    RANGES: ClassVar[dict] = {"max_steps": ">= 1", "batch_size": ">= 1", "segment_seconds": "> 0", "seed": ">= 0",
                              "val_every": ">= 1", "val_clips": ">= 1", "val_seconds": "> 0",
                              "ckpt_every": ">= 1", "workers": ">= 0"}
    RENAMED: ClassVar[dict] = {"checkpoint_every": "ckpt_every"}  # as the generator's trainer.ckpt_every

    def __post_init__(self):
        problems = []
        if not self.train_manifest:
            problems.append("train_manifest is required")
        for key in ("max_steps", "batch_size", "val_every", "val_clips", "ckpt_every"):
            if getattr(self, key) < 1:
                problems.append(f"{key} must be at least 1")
        if self.segment_seconds <= 0 or self.val_seconds <= 0:
            problems.append("segment_seconds and val_seconds must be positive")
        unknown = sorted(set(self.discriminators) - {"mpd", "mrd"})
        if unknown:
            problems.append(f"discriminators {unknown}: choose from mpd, mrd")
        if not 0 < self.optim.lr_decay <= 1:
            problems.append("optim.lr_decay must lie in (0, 1]")
        if problems:
            raise ConfigError("; ".join(problems))
