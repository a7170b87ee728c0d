"""The codec fine-tuning config: one typed schema, filled by `kani_adapt.config.load_config`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Optional, Union

from kani_adapt.config.shared import Device, LoraCommon, OptimCommon, Seed
from kani_adapt.config.typed import required
from kani_adapt.config.defaults import NANOCODEC_HUB_ID
from kani_adapt.config.wiring import ModelRef

# Keys that may change when a run is resumed: they do not alter what a step computes.
RESUMABLE_KEYS = ("max_steps", "val_every", "ckpt_every")


@dataclass
class LoraConfig(LoraCommon):
    r: int = 8  # per conv (capped by the conv's group size)
    alpha: float = 8.0
    transposed: bool = True  # also adapt the up-sampling ConvTranspose1d layers


@dataclass
class OptimConfig(OptimCommon):
    lr: float = 2e-5  # fine-tuning rate (NanoCodec pretraining used 2e-4)
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    grad_clip: Optional[float] = None  # NeMo's recipe does not clip
    lr_decay: float = 0.9999  # ExponentialLR gamma per batch; 1.0 keeps the rate constant
    RANGES: ClassVar[dict] = {"lr_decay": "(0, 1]"}


@dataclass
class CodecTrainConfig:
    train_manifest: ModelRef = required("train_manifest=data_work/codec/train.json")  # NeMo manifest (JSON lines)
    val_manifest: Optional[ModelRef] = None  # fixed validation clips; default: train_manifest
    run_dir: str = "runs/codec"  # receives config.yaml, checkpoints/, tb/, metrics.jsonl
    codec: ModelRef = NANOCODEC_HUB_ID  # .nemo, hub id or size name
    mode: Literal["decoder", "full", "lora"] = "decoder"
    # auto: sized to the codec and the device (kani_adapt/training/codec/discriminators.py);
    # or a list, [] = none
    discriminators: Union[Literal["auto"], list[Literal["mpd", "mrd"]]] = "auto"
    slm_dir: Optional[str] = None  # local WavLM folder to keep an SLM discriminator
    max_steps: int = 1000  # batches (each batch steps the generator and the discriminator once)
    batch_size: int = 8
    segment_seconds: float = 1.0  # random crop per clip, rounded up to whole codec frames
    seed: Seed = 0
    val_every: int = 200  # batches between validations (losses, audio, spectrograms)
    val_clips: int = 4
    val_seconds: float = 4.0
    ckpt_every: int = 200  # batches between checkpoints (the last batch always saves)
    workers: int = 0  # DataLoader workers
    device: Device = "auto"  # auto, cpu, cuda or cuda:N (one GPU: codec training does not shard)
    precision: str = "32-true"
    lora: LoraConfig = field(default_factory=LoraConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    RANGES: ClassVar[dict] = {"max_steps": ">= 1", "batch_size": ">= 1", "segment_seconds": "> 0",
                              "val_every": ">= 1", "val_clips": ">= 1", "val_seconds": "> 0",
                              "ckpt_every": ">= 1", "workers": ">= 0"}
    # former names: the generator's trainer.ckpt_every, and every schema's device
    RENAMED: ClassVar[dict] = {"checkpoint_every": "ckpt_every", "accelerator": "device"}
