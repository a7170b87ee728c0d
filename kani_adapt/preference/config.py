"""``kani-adapt prefer``'s config: one typed schema, checked before any compute.

Upstream's settings (nineninesix gepard-train, DPO configs and MODEL_GUIDE) are the defaults:
8 rollouts per text x voice group at temperature 0.4 with onset-only guidance 3.0 over 20
frames, a frame cap of 4x the expected frames within [80, 300]; the reward
``-1.0 WER - 0.5 max(0, dur - dur_max) - 2.0 [dur < dur_min] - 2.0 [ASR empty]``; gates
WER <= 0.2, non-empty, not truncated, duration within [0.3, 2.0] x expected; margin 0.5, two
pairs per group; beta 2, LoRA on q/v plus the end-of-speech row. Where we differ: the expected
duration comes from a model fitted per language on the training dataset (upstream uses
``0.7 + 0.4 s/word`` for English), and the similarity term is off unless asked for (upstream
weighs it 0.5), since it decodes and embeds every rollout once more.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

from kani_adapt.config.defaults import SPEAKER_EMBEDDER_HUB_ID
from kani_adapt.config.shared import Device
from kani_adapt.config.typed import required
from kani_adapt.config.wiring import ModelRef

ENGLISH_ONLY_SUFFIXES = (".en",)  # Whisper's English-only checkpoints: tiny.en ... medium.en


@dataclass
class PromptsConfig:
    # built-in short-focused texts and regression anchors of this language (de, en, sw), or a
    # JSONL file of {"text": ..., "kind": ...} lines (kinds: kani_adapt/preference/prompts.py)
    language: str = "de"
    tag: str = ""  # tag written before each text (empty: the language)
    file: Optional[str] = None
    eval_share: float = 0.25  # of each kind's texts, held out for the eval stage
    RANGES: ClassVar[dict] = {"eval_share": "[0, 0.9]"}


@dataclass
class SampleConfig:
    rollouts: int = 8  # per text x voice group
    temperature: float = 0.4
    top_p: float = 1.0
    onset_guidance: float = 3.0  # onset-only guidance scale (1: off), to mine positives
    onset_frames: int = 20
    cap_factor: float = 4.0  # frame cap: cap_factor x expected frames, within [cap_min, cap_max]
    cap_min: int = 80
    cap_max: int = 300
    speakers_per_text: int = 2  # voices drawn per text from the pool
    eval_speakers: int = 1  # voices of the pool held out for the eval stage
    batch: int = 32  # rollouts generated together
    seed: int = 0
    RANGES: ClassVar[dict] = {"rollouts": ">= 2", "temperature": "> 0", "top_p": "(0, 1]",
                              "onset_guidance": ">= 1", "onset_frames": ">= 0", "cap_factor": "> 1",
                              "cap_min": ">= 1", "speakers_per_text": ">= 1", "eval_speakers": ">= 0",
                              "batch": ">= 1", "cap_max": ">= 1", "seed": ">= 0"}

    def validate(self) -> list[str]:
        if self.cap_max < self.cap_min:
            return [f"cap_max ({self.cap_max}) is below cap_min ({self.cap_min})"]
        return []


@dataclass
class RewardConfig:
    asr: ModelRef = "openai/whisper-large-v3"  # multilingual: the tag's language is forced
    wer: float = 1.0
    over: float = 0.5  # per second beyond the window's long end
    short: float = 2.0  # below the window's short end; 0 is refused (collapse to silence)
    empty: float = 2.0  # the recogniser heard nothing
    window_min: float = 0.3  # x expected duration
    window_max: float = 2.0
    # -similarity x (1 - cosine of the rollout's voice to the voice it was given), upstream 0.5;
    # 0 (off) by default: it decodes every rollout once more and embeds it with speaker_embedder
    similarity: float = 0.0
    speaker_embedder: ModelRef = SPEAKER_EMBEDDER_HUB_ID  # what embedded the dataset's voices
    RANGES: ClassVar[dict] = {"wer": ">= 0", "over": ">= 0", "short": ">= 0", "empty": ">= 0",
                              "window_min": "(0, 1)", "window_max": "> 1", "similarity": "[0, 10]"}

    def validate(self) -> list[str]:
        problems = []
        if self.short <= 0:
            problems.append("short must be above 0: with only the over-length penalty, stopping "
                            "at once beats an honest attempt and DPO collapses to silence "
                            "(upstream's record); keep the duration penalty two-sided")
        if self.empty <= 0:
            problems.append("empty must be above 0: an empty transcript caps WER at 1 and would "
                            "otherwise reward silence")
        return problems


@dataclass
class PairsConfig:
    max_wer: float = 0.2  # the chosen's gates: WER at most this, non-empty, not truncated,
    margin: float = 0.5  # duration in the window; reward gap chosen - rejected at least this
    per_group: int = 2
    # A listening test's eval folders, as given to `kani-adapt listen` (the first holds its
    # ratings): each pair of generated clips of one text and voice that listeners judged becomes
    # a pair, the listeners' majority chosen (kani_adapt/preference/human.py). Empty: none.
    human: list[str] = field(default_factory=list)
    human_sample: int = 0  # the listening test's --sample
    human_weight: float = 1.0  # weight of a listener pair against an automatic one (1)
    RANGES: ClassVar[dict] = {"max_wer": ">= 0", "margin": ">= 0", "per_group": ">= 1",
                              "human_weight": "> 0", "human_sample": ">= 0"}


@dataclass
class PreferTrainConfig:
    beta: float = 2.0
    stop_floor: float = 1e-4
    max_steps: int = 200  # per round (upstream: 2 epochs over the pairs)
    lr: float = 5e-5
    lora_r: int = 16
    lora_targets: str = "qv"
    token_budget: int = 16384
    precision: str = "bf16-mixed"
    export_dtype: str = "bf16"  # the merged export each next round samples from
    overrides: list[str] = field(default_factory=list)  # further key=value for the training run
    RANGES: ClassVar[dict] = {"beta": "(0, 50]", "stop_floor": "[0, 0.01]", "max_steps": ">= 1",
                              "lr": "> 0", "lora_r": ">= 1", "token_budget": ">= 64"}


@dataclass
class PreferConfig:
    run_dir: str = required("run_dir=runs/prefer")
    policy: ModelRef = required("policy=runs/sft/export (the supervised model's merged export)")
    dataset: ModelRef = required("dataset=data/hf (the supervised run's dataset)")
    codec: Optional[ModelRef] = None  # decodes rollouts for the recogniser
    rounds: int = 2
    tolerance: float = 0.05  # a round ships when no kind's failure rate rose more than this
    device: Device = "auto"
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    train: PreferTrainConfig = field(default_factory=PreferTrainConfig)
    RANGES: ClassVar[dict] = {"rounds": "[1, 10]", "tolerance": "[0, 1]"}

    def validate(self) -> list[str]:
        problems = []
        language = (self.prompts.tag or self.prompts.language).split("_")[0]
        if language != "en" and str(self.reward.asr).rstrip("/").endswith(ENGLISH_ONLY_SUFFIXES):
            problems.append(f"reward.asr {self.reward.asr} is an English-only recogniser and the "
                            f"prompts are {language}: it would hear no words and reward silence; "
                            "use a multilingual one (openai/whisper-large-v3)")
        return problems
