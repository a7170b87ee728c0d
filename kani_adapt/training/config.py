"""The generator training schema. YAML supplies values; defaults live here."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Literal, Optional, Union

from kani_adapt import dataset
from kani_adapt.text import fertility
from kani_adapt.config.shared import Device, LoraCommon, OptimCommon, Seed
from kani_adapt.config.typed import required
from kani_adapt.eval.config import TrainingEvalConfig
from kani_adapt.config.sampling import SeededSampling
from kani_adapt.config.wiring import ModelRef
from kani_adapt.training.objectives.registry import OBJECTIVES

AUTO = "auto"  # data.token_budget: measured at fit start (kani_adapt.training.budget)


def known_objective(name: str) -> str | None:
    if name not in OBJECTIVES:
        return f"{name!r} is not a training objective; choose from {', '.join(OBJECTIVES)}"
    return None


@dataclass
class TrainDataConfig:
    # HF dataset folder (save_to_disk) or parquet file/folder. Required: an empty default once
    # searched the current folder (and crashed inside .venv).
    train: ModelRef = required("data.train=runs/demo/data/dataset/hf")
    replay: Optional[ModelRef] = None  # base-language dataset mixed in against forgetting
    replay_ratio: float = 0.0  # share of training batches drawn from `replay`
    max_duration: float = 40.0  # seconds; pretraining filtered longer clips out
    min_duration: float = 0.0
    # Speakers held out entirely for validation, per tag (a tag with two or more speakers gives
    # this many, keeping at least one to train; a lone speaker trains): the eval evaluates them
    val_speakers: int = 1
    val_max_items: int = 64
    # Padded tokens per batch (length-aware batching); "auto": the largest that a probing step
    # at start shows to fit the GPU's free memory (CUDA only; elsewhere 8192, the default).
    token_budget: Union[int, Literal["auto"]] = 8192
    num_workers: int = 2  # data loader worker processes (0: load in the training process)
    loss_on: Literal["all", "audio"] = "all"  # official: all non-pad tokens
    drop_repeated_frames: bool = True  # as the official data prep (and the released weights)
    use_speaker_emb: bool = True
    speaker_emb_column: str = dataset.SPEAKER_EMB  # per clip; or the speaker's mean
    tag_column: str = dataset.TAG
    # Share of training rows (a fixed, seeded choice, so resume stays exact) trained without
    # their text (prompt SOH BOS EOT EOH ...): the unconditional branch that onset-only
    # guidance (sampling.cfg_scale, cfg_frames) subtracts then means something. 0: none.
    text_dropout: float = 0.0
    # Short texts repeated before the one spoken (kani_adapt.tokens.TextLayout, upstream's
    # short-prompt remedy): a row of fewer than repeat_below text tokens gets
    # ceil(repeat_target / its tokens) copies in all (at most repeat_max), the copies masked
    # from the loss; a seeded share repeat_keep of those rows stays unrepeated, so the model
    # also speaks without them. The run, every export and `generate` then lay short prompts
    # out the same way (text_layout.json). Off by default.
    repeat_short_texts: bool = False
    repeat_below: int = 13
    repeat_target: int = 16
    repeat_max: int = 8
    repeat_keep: float = 0.25
    # Step 0 for LoRA (kani_adapt.text.fertility): stop when a tag's texts are more than this share
    # byte-fallback tokens, or cost more than this many times the tokens per word of English/
    # German with the same tokenizer (the script is not in the vocabulary). 0: no check.
    max_byte_fallback: float = fertility.MAX_BYTE_FALLBACK
    max_fertility_ratio: float = fertility.MAX_FERTILITY_RATIO
    RANGES: ClassVar[dict] = {
        "replay_ratio": "[0, 1)", "max_duration": "> 0", "min_duration": ">= 0",
        "val_speakers": ">= 0", "val_max_items": ">= 1", "token_budget": ">= 1",
        "num_workers": ">= 0", "max_byte_fallback": "[0, 1]", "text_dropout": "[0, 1)",
        "max_fertility_ratio": ">= 0", "repeat_below": ">= 1", "repeat_target": ">= 1",
        "repeat_max": ">= 1", "repeat_keep": "[0, 1]"}

    def text_layout(self):
        """The prompt layout these settings train (kani_adapt.tokens.TextLayout)."""
        from kani_adapt.tokens import TextLayout

        if not self.repeat_short_texts:
            return TextLayout()
        return TextLayout(below=self.repeat_below, target=self.repeat_target, most=self.repeat_max)

    def validate(self) -> list[str]:
        problems = [] if self.train.strip() else ["train is empty; give a dataset folder or parquet file"]
        if self.replay_ratio > 0 and not self.replay:
            problems.append("replay_ratio > 0 needs replay (a base-language dataset)")
        if self.repeat_short_texts and self.repeat_target < self.repeat_below:
            problems.append(f"repeat_target {self.repeat_target} is under repeat_below "
                            f"{self.repeat_below}: texts of {self.repeat_target}-"
                            f"{self.repeat_below - 1} tokens would get no copies; set "
                            "repeat_target at least repeat_below (upstream: 16 over 13)")
        return problems


@dataclass
class ModelConfig:
    # KaniTTS2 checkpoint (dir or hub id), or a size (tiny/350m) at random. Required: a default
    # of "tiny" trained a random toy model whenever it was forgotten.
    init: ModelRef = required("model.init=nineninesix/kani-tts-2-en, or model.init=tiny for a random test model")
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = False
    # Loss over this many positions at a time (LM head and cross-entropy checkpointed per
    # slice): peak memory stops growing with positions x vocabulary. 0: full logits at once.
    loss_chunk: int = 64
    RANGES: ClassVar[dict] = {"loss_chunk": ">= 0"}


@dataclass
class LoraConfig(LoraCommon):  # r: 16, alpha: 32
    # servable: q/k/v only, what vLLM, SGLang and llama.cpp serve unmerged (the export says);
    # qv: q and v only (preference training's default, upstream's DPO targets; servable too)
    targets: Literal["attention", "attention_mlp", "all_linear", "servable", "qv"] = "attention_mlp"
    dropout: float = 0.05
    rslora: bool = False
    train_speaker_projection: bool = False
    train_rope_scales: bool = False
    # Train the output row of end of speech (one row of the tied embedding/LM head, PEFT's
    # trainable tokens): what decides when an utterance ends. No engine applies it to an
    # unmerged adapter: serve the merged export (the card says so).
    stop_row: bool = False
    RANGES: ClassVar[dict] = {"dropout": "[0, 1)"}


@dataclass
class OptimConfig(OptimCommon):  # lr: 2e-4, betas: [0.9, 0.95], grad_clip: 1.0
    weight_decay: float = 0.01
    rope_lr_ratio: float = 1.5  # official: RoPE scales at lr x 1.5, no weight decay
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decays to lr x this
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes kept frozen
    RANGES: ClassVar[dict] = {
        "weight_decay": ">= 0", "rope_lr_ratio": ">= 0", "warmup_steps": ">= 0",
        "min_lr_ratio": "[0, 1]"}


@dataclass
class TrainerConfig:
    max_steps: int = 1000
    precision: str = "bf16-mixed"  # "32-true" on CPU
    device: Device = "auto"  # where: auto, cpu, cuda or cuda:N (one named GPU: gpus_per_node 1)
    gpus_per_node: int = 1  # how many: GPUs of each node (with strategy ddp or fsdp)
    num_nodes: int = 1
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    log_every: int = 10
    val_every: int = 200
    ckpt_every: int = 200
    keep_checkpoints: int = 2
    sample_every: int = 0  # generate validation samples every N steps (0: at validation)
    sample_prompts: int = 2  # (generated with the schema's `sampling`)
    seed: Seed = 1234
    compile: bool = False  # torch.compile the generator (first steps slower while it compiles)
    RANGES: ClassVar[dict] = {
        "max_steps": ">= 1", "num_nodes": ">= 1", "log_every": ">= 1", "val_every": ">= 1",
        "ckpt_every": ">= 1", "keep_checkpoints": ">= -1", "sample_every": ">= 0",
        "sample_prompts": ">= 0", "gpus_per_node": ">= 1"}
    # device: one name in every schema; the GPU count apart from it (Lightning's `devices`)
    RENAMED: ClassVar[dict] = {"accelerator": "device", "devices": "gpus_per_node"}

    def validate(self) -> list[str]:
        if ":" in self.device and self.gpus_per_node != 1:
            return [f"device {self.device} names one GPU but gpus_per_node is "
                    f"{self.gpus_per_node}; use device: cuda with gpus_per_node: "
                    f"{self.gpus_per_node}, or gpus_per_node: 1"]
        return []


@dataclass
class DpoConfig:
    """``objective: dpo``: length-normalised, reference-anchored DPO on a pairs file
    (kani_adapt/training/objectives/dpo.py; ``kani-adapt prefer`` writes the file)."""

    pairs: Optional[ModelRef] = None  # folder with pairs.parquet and pairs.json
    # Scale of the preference margin. Log-likelihoods are per-frame averages, so differences
    # are small numbers: upstream uses 2 (0.1 is the classic value for sums over tokens).
    beta: float = 2.0
    # Bounds every end-of-speech term within [floor, 1 - floor] (kani_adapt/training/
    # trajectory.py); must equal the value the pairs' reference log-probabilities used.
    stop_floor: float = 1e-4
    weights: bool = True  # weigh pairs by the file's weights (reward gap, listener pairs' weight)
    val_share: float = 0.1  # groups of pairs held out for val/accuracy (0: none)
    RANGES: ClassVar[dict] = {"beta": "(0, 50]", "stop_floor": "[0, 0.01]", "val_share": "[0, 0.5]"}


@dataclass(frozen=True)
class TrainingSampling(SeededSampling):
    max_frames: int = 250  # shorter than a whole utterance: they are generated at every validation


@dataclass
class TrainConfig:
    run_dir: str = "runs/generator"
    # Which weights train (the parameterisation): full (every weight: continued pretraining) or
    # lora (adapters on a frozen base).
    mode: Literal["full", "lora"] = "lora"
    # What a step optimises (kani_adapt/training/objectives/registry.py): sft, the next-token
    # loss on the dataset's rows; dpo, preference pairs (the `dpo` section).
    objective: Annotated[str, known_objective] = "sft"
    codec: Optional[ModelRef] = None  # decode samples and scored speech to audio with it (path or id)
    licence: str = "unspecified"  # written to the adapter card
    data: TrainDataConfig = field(default_factory=TrainDataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: TrainingEvalConfig = field(default_factory=TrainingEvalConfig)  # scored speech at validation
    dpo: DpoConfig = field(default_factory=DpoConfig)  # objective: dpo
    # How the validation samples and the scored speech are generated: the same seed at every
    # validation, so changes come from the weights alone.
    sampling: TrainingSampling = field(default_factory=TrainingSampling)
    # Former places of the sampling keys (a run folder written before reopens with them).
    RENAMED: ClassVar[dict] = {"eval.max_frames": "sampling.max_frames",
                               "eval.temperature": "sampling.temperature", "eval.seed": "sampling.seed",
                               "trainer.sample_max_frames": "sampling.max_frames"}
    RENAMED_VALUES: ClassVar[dict] = {"mode": {"continue_pretrain": "full"}}

    def validate(self) -> list[str]:
        if self.objective == "dpo" and not self.dpo.pairs:
            return ["objective dpo needs dpo.pairs (a folder with pairs.parquet, written by "
                    "`kani-adapt prefer`)"]
        if self.lora.stop_row and self.mode != "lora":
            return ["lora.stop_row trains one row beside a LoRA: it needs mode lora (mode full "
                    "trains every row already)"]
        return []
