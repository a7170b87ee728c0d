"""Typed configuration of an evaluation run (YAML via ``--config`` and ``key=value`` overrides)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kani_adapt.common_config import Device, Seed
from kani_adapt.defaults import NANOCODEC_HUB_ID
from kani_adapt.scorers.failures import FailureConfig


@dataclass
class ScorerConfig:
    dnsmos: bool = True  # DNSMOS P.808 / P.835 (CPU, ONNX models in the speechmos wheel)
    dnsmos_threads: int = 0  # onnxruntime threads (0 = its default)
    asr: str = ""  # Whisper hub id or folder (e.g. openai/whisper-large-v3); empty = no CER/WER
    asr_batch_size: int = 8
    languages: dict[str, str] = field(default_factory=dict)  # tag -> Whisper language code
    speaker_embedder: str = ""  # KaniTTS2 speaker embedder folder or hub id; empty = no similarity
    xvector: str = ""  # optional WavLMForXVector folder or hub id (second similarity)
    accent_model: str = ""  # optional audio-classification folder or hub id
    accent_labels: dict[str, str] = field(default_factory=dict)  # tag -> expected label
    batch_size: int = 8  # clips per batch for the embedders and the classifier
    failures: FailureConfig = field(default_factory=FailureConfig)


@dataclass
class DatasetSetConfig:
    """When --set is a kani-adapt dataset (folder or parquet) instead of a JSONL/YAML list."""

    speakers: list[str] = field(default_factory=list)  # held-out speakers to evaluate
    from_run: str = ""  # or: the training run dir whose data_stats.json names them
    per_speaker: int = 4  # items per held-out speaker
    replay: str = ""  # base-language dataset: its items are marked base (the forgetting line)
    replay_speakers: int = 2  # speakers taken from the replay dataset
    replay_per_speaker: int = 2


@dataclass
class EvalConfig:
    codec: str = NANOCODEC_HUB_ID  # size name, .nemo file or hub id
    samples: int = 1  # generations per item (different seeds)
    seed: Seed = 0  # sample k of every item uses seed + k: runs and checkpoints are comparable
    batch_size: int = 8  # items generated together
    temperature: float = 0.7  # sampling of the generator (0 = greedy)
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    max_frames: int = 500  # the length cap (12.5 frames per second)
    device: Device = "auto"  # generator, codec and scorers (auto: a GPU when there is one)
    dtype: Literal["fp32", "bf16"] = "fp32"  # generator compute dtype
    resamples: int = 2000  # bootstrap resamples for the intervals
    write_wavs: bool = True
    scorers: ScorerConfig = field(default_factory=ScorerConfig)
    dataset: DatasetSetConfig = field(default_factory=DatasetSetConfig)


@dataclass
class TrainingEvalConfig:
    """Scoring generated speech at every validation of a training run (needs ``codec``)."""

    prompts: int = 0  # validation items generated and scored each validation (0 = off)
    max_frames: int = 250  # length cap of those generations
    temperature: float = 0.7
    seed: Seed = 0  # the same seed every validation: changes come from the weights alone
    audio_clips: int = 2  # clips logged as TensorBoard audio
    monitor: str = ""  # also keep the best checkpoints by this eval metric (e.g. cer, dnsmos_p808)
    keep_best: int = 1  # how many of those (checkpoints/best-*.ckpt)
    scorers: ScorerConfig = field(default_factory=ScorerConfig)  # DNSMOS + failures by default
