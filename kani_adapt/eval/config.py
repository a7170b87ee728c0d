"""Typed configuration of an evaluation run (YAML via ``--config`` and ``key=value`` overrides)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from kani_adapt.config.shared import Device
from kani_adapt.config.defaults import NANOCODEC_HUB_ID
from kani_adapt.config.sampling import SeededSampling
from kani_adapt.scorers.config import ScorerConfig
from kani_adapt.config.wiring import ModelRef
from kani_adapt.text.tags import Tags

# The sampling keys of the eval schemas before they had a `sampling` section.
FORMER_SAMPLING_KEYS = {key: f"sampling.{key}" for key in
                        ("temperature", "top_p", "repetition_penalty", "seed")} | {
                            "max_frames": "sampling.max_frames"}
# The scorers' tag keys before a tag's facts had one home (a recipe's `tags`, wired here).
FORMER_TAG_KEYS = {"scorers.languages": "tags.<tag>.language",
                   "scorers.accent_labels": "tags.<tag>.accent_label"}


@dataclass
class DatasetSetConfig:
    """When --set is a kani-adapt dataset (folder or parquet) instead of a JSONL/YAML list."""

    speakers: list[str] = field(default_factory=list)  # held-out speakers to evaluate
    from_run: str = ""  # or: the training run dir whose data_stats.json names them
    per_speaker: int = 4  # items per held-out speaker
    replay: ModelRef = ""  # base-language dataset: its items are marked base (the forgetting line)
    replay_speakers: int = 2  # speakers taken from the replay dataset
    replay_per_speaker: int = 2
    RANGES: ClassVar[dict] = {"per_speaker": ">= 1", "replay_speakers": ">= 0", "replay_per_speaker": ">= 1"}


@dataclass
class EvalConfig:
    codec: ModelRef = NANOCODEC_HUB_ID  # size name, .nemo file or hub id
    samples: int = 1  # generations per item (different seeds)
    batch_size: int = 8  # items generated together
    # How the generator samples; sample k of every item uses sampling.seed + k, so runs and
    # checkpoints are comparable.
    sampling: SeededSampling = field(default_factory=SeededSampling)
    device: Device = "auto"  # generator, codec and scorers (auto: a GPU when there is one)
    dtype: Literal["fp32", "bf16"] = "fp32"  # generator compute dtype
    resamples: int = 2000  # bootstrap resamples for the intervals
    # "kani": kani-adapt's scoring; "msbench": upstream's benchmark protocol (make-speech-
    # benchmark v2: its text normaliser, audio preparation and arithmetic, S/D/I per utterance,
    # cells under 30 speakers flagged; docs/judges.md), so the figures can be set beside theirs
    protocol: Literal["kani", "msbench"] = "kani"
    write_wavs: bool = True
    # the built-in 1-3 word prompts of each tag's language (kani_adapt.eval.probes), generated
    # beside the eval set and reported apart: where codec-token TTS derails most
    short_probes: bool = True
    scorers: ScorerConfig = field(default_factory=ScorerConfig)
    dataset: DatasetSetConfig = field(default_factory=DatasetSetConfig)
    # What each tag of the eval set stands for (kani_adapt.text.tags.Tag: language, description,
    # asr_language, accent_label): the ASR language, CER normalisation and probes of its items,
    # the accent classifier's expected label, the listening test's description (kept in
    # eval.json). In a recipe: the recipe's `tags`.
    tags: Tags = field(default_factory=dict)
    RANGES: ClassVar[dict] = {"samples": ">= 1", "batch_size": ">= 1", "resamples": ">= 1"}
    RENAMED: ClassVar[dict] = {**FORMER_SAMPLING_KEYS, **FORMER_TAG_KEYS}


@dataclass
class TrainingEvalConfig:
    """Scoring generated speech at every validation of a training run (needs ``codec``)."""

    prompts: int = 0  # validation items generated and scored each validation (0 = off)
    # (they are generated with the training schema's `sampling`, as the validation samples)
    audio_clips: int = 2  # clips logged as TensorBoard audio
    monitor: str = ""  # also keep the best checkpoints by this eval metric (e.g. cer, dnsmos_p808)
    keep_best: int = 1  # how many of those (checkpoints/best-*.ckpt)
    # The forgetting line: held-out rows of data.replay (the base language) generated and scored
    # too, logged as eval/base_<metric>.
    base_prompts: int = 0
    # Stop training when the base language gets worse: this metric of the base rows (e.g. cer;
    # "" = never stop) measured before the first step, then at each validation; worse by more
    # than forgetting_tolerance (in the metric's own units) at forgetting_patience validations
    # in a row ends the run, with the reason in stopped.json.
    stop_on_forgetting: str = ""
    forgetting_tolerance: float = 0.05
    forgetting_patience: int = 1
    scorers: ScorerConfig = field(default_factory=ScorerConfig)  # DNSMOS + failures by default
    # Each tag's facts as in the eval schema (the ASR language and accent label the scorers
    # use). In a recipe: the recipe's `tags`.
    tags: Tags = field(default_factory=dict)
    RENAMED: ClassVar[dict] = FORMER_TAG_KEYS
    RANGES: ClassVar[dict] = {"prompts": ">= 0", "audio_clips": ">= 0", "keep_best": ">= 1",
                              "base_prompts": ">= 0", "forgetting_tolerance": ">= 0",
                              "forgetting_patience": ">= 1"}

    def validate(self) -> list[str]:
        if self.stop_on_forgetting and self.base_prompts < 1:
            return ["stop_on_forgetting needs base_prompts >= 1 (base-language rows to score)"]
        return []
