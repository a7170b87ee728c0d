"""The recipe schema: what one adaptation (a language or an accent) needs, stage by stage.

A recipe states only its choices; defaults live in the dataclasses of each stage (data tools,
codec fine-tuning, generator training). How the stages connect (where the prepared dataset
lands, where each run writes, which device and seed each stage takes) is :attr:`Recipe.WIRED`:
a table of keys and the keys they come from, which the loader fills in wherever the recipe
leaves a key out (:mod:`kani_adapt.config.wiring`). Which codec each stage uses is decided by the
recipe's plan (:func:`kani_adapt.recipes.runner.codecs_in_effect`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional

from data_tools import registry
from data_tools.config import DataConfig, normalise_raw
from kani_adapt.config.shared import Device, Seed
from kani_adapt.config.typed import from_dict, get_path
from kani_adapt.config.load import read_yaml
from kani_adapt.dataset import DatasetLayout
from kani_adapt.config.defaults import MAX_CLIP_SECONDS, NANOCODEC_HUB_ID, SPEAKER_EMBEDDER_HUB_ID
from kani_adapt.core.errors import ConfigError
from kani_adapt.eval.config import EvalConfig
from kani_adapt.preference.config import PreferConfig
from kani_adapt.config.sampling import SeededSampling
from kani_adapt.training.codec.config import CodecTrainConfig
from kani_adapt.training.config import TrainConfig
from kani_adapt.config.wiring import ModelRef, resolve_paths
from kani_adapt.text.tags import Tags, only

NANOCODEC = NANOCODEC_HUB_ID


@dataclass
class Voice:
    voice: str  # espeak-ng voice, e.g. de, en-gb-scotland, de+f3
    speaker: str  # speaker name in the corpus
    tag: str  # language/accent tag of its utterances


@dataclass
class SynthConfig:
    """A synthetic corpus spoken by espeak-ng (demos and smoke tests, no downloads)."""

    voices: list[Voice] = field(default_factory=list)
    sentences: dict[str, list[str]] = field(default_factory=dict)  # tag -> sentences
    out: str = "recordings"  # inside the work dir


@dataclass
class CodecCheckStage:
    enabled: bool = True
    max_clips: int = 50
    max_seconds: float = MAX_CLIP_SECONDS
    RANGES: ClassVar[dict] = {"max_clips": ">= 1", "max_seconds": "> 0"}


@dataclass
class ExportStage:
    merged: bool = True  # full checkpoint in the official layout
    adapter: bool = True  # PEFT adapter + card (LoRA runs)
    dtype: str = "bf16"


@dataclass
class SampleStage:
    texts: list[str] = field(default_factory=list)
    tag: Optional[str] = None
    speaker: Optional[str] = None  # a speaker of the dataset (mean embedding); default: first
    sampling: SeededSampling = field(default_factory=SeededSampling)
    RENAMED: ClassVar[dict] = {"max_frames": "sampling.max_frames", "seed": "sampling.seed"}


@dataclass
class LearnStage:
    """Proof that training teaches: a few clips of the training set learned by heart, then one
    said back. Continued pretraining (all weights) of ``generator.model.init`` on ``clips``
    rows at a high learning rate, as the learning tests memorise theirs; the merged result and
    the base each speak the first clip's text with its tag and its own speaker embedding
    (greedy), decoded with the codec the samples use, and each is compared with the clip's
    codec round trip (its dataset codes decoded): mel distance and frames said exactly.
    Writes samples/learned_{adapted,base,roundtrip}.wav and learn/learned.json; the demo turns
    it on (a real base gains nothing from it but the check that it can still memorise)."""

    enabled: bool = False
    # Rows taught, in dataset order: each with a text new to the others and, while there are
    # any, a speaker new to them too (one clip per voice).
    clips: int = 3
    # Enough for 3 demo clips at `lr` (measured: 120 steps say all 29 frames of the first,
    # 80 steps 11 of them, even at lr 0.01).
    steps: int = 120
    lr: float = 5e-3  # high on purpose: memorising, not generalising
    max_frames: int = 100  # generation cap (8 s); a clip said back stops at its own end
    RANGES: ClassVar[dict] = {"clips": ">= 1", "steps": ">= 1", "lr": "> 0", "max_frames": ">= 1"}


@dataclass
class PreferStage(PreferConfig):
    """Preference rounds on the adapter (``kani-adapt prefer``'s settings, docs/preference.md),
    off unless asked for: the last stage, after the eval. The loader wires the policy (the
    merged export), the dataset (the generator's training set), the run folder and the device;
    the codec is the one the eval decodes with."""

    enabled: bool = False


@dataclass
class EvalStage(EvalConfig):
    """Base vs adapted on held-out speakers of the dataset (and the generator's replay set, the
    forgetting line), with the fields of ``kani-adapt eval --config``. The loader fills in the
    dataset's held-out speakers (from the generator run) and the replay set."""

    enabled: bool = True
    base: ModelRef = ""  # checkpoint compared against; default: generator.model.init (a size: rebuilt)
    codec: Optional[ModelRef] = None  # default: the codec the plan decodes with (see Recipe.codec)


# What `prepare` writes: the data tools' dataset folder in the data work folder.
DATASET = DatasetLayout.in_work("${data.work}")
# Keys the recipe's device reaches: every data stage's that shares it (the registry says which:
# VAD, data.segment.device, keeps its own), codec fine-tuning's, training's and eval's.
SHARE_DEVICE = (*(f"data.{key}" for key in registry.device_keys(shared=True)),
                "codec_finetune.device", "generator.trainer.device", "eval.device", "prefer.device")
SHARE_SEED = ("codec_finetune", "generator.trainer", "sample.sampling", "eval.sampling")
# Every key that loads the speaker embedder: the data's embeddings (and voice checks, which use
# embed.model), the eval stage's similarity and the prefer stage's similarity term, so the
# voices compared are embedded as the data was. Not generator.eval.scorers.speaker_embedder: the training callback's clips have no
# reference to compare with, so a model there would load to score nothing.
SHARE_SPEAKER_EMBEDDER = ("data.embed.model", "eval.scorers.speaker_embedder",
                          "prefer.reward.speaker_embedder")
# Every key that may load it (the training callback's too, where a recipe names one there).
LOADS_SPEAKER_EMBEDDER = (*SHARE_SPEAKER_EMBEDDER, "generator.eval.scorers.speaker_embedder")
TINY = "tiny"  # speaker_embedder: tiny builds one into the work folder (TINY_EMBEDDER)
# The sections that read each tag's facts: they take the recipe's `tags`, and only those.
SHARE_TAGS = ("data", "generator.eval", "eval")
# The facts the data tools and training read (a description is for listeners: rewording one
# prepares or trains nothing again, and an interrupted training run still resumes).
READ_BY = {"data": ("language", "asr_language"),
           "generator.eval": ("language", "asr_language", "accent_label")}
# Where a tag's language and accent label were given before `tags` held every fact of a tag.
FORMER_TAG_KEYS = {
    "data.transcribe.languages": "tags.<tag>.language",
    "data.filter.language": "tags.<tag>.language",
    **{f"{section}.scorers.{key}": f"tags.<tag>.{fact}" for section in ("eval", "generator.eval")
       for key, fact in (("languages", "language"), ("accent_labels", "accent_label"))}}


@dataclass
class Recipe:
    name: str = ""  # default: the file's name
    description: str = ""
    # Every fact of each language/accent tag, in one place (kani_adapt.text.tags.Tag): its
    # language (texts, CER, probes; "" = the tag's first part), what it stands for to a
    # listener (the listening test asks "how much does this sound like <description>"; kept in
    # eval/eval.json), Whisper's code where it differs, the accent classifier's expected label:
    #   tags: {de_hessian: {language: de, description: German with a Hessian accent}}
    # (a plain string is the description). Wired to data, generator.eval and eval.
    tags: Tags = field(default_factory=dict)
    work_dir: str = ""  # relative to the recipe's folder; default: runs/<name> in the shell's folder
    # Tokenizes the data, is checked and fine-tuned, and decodes generated speech unless the
    # recipe fine-tunes it: then the fine-tuned codec decodes (.nemo, hub id, size).
    codec: ModelRef = NANOCODEC
    # The speaker embedder of every stage that loads one (SHARE_SPEAKER_EMBEDDER), unless the
    # stage names its own; or "tiny" (built on this machine, for demos).
    speaker_embedder: str = SPEAKER_EMBEDDER_HUB_ID
    # Where every stage that runs a model runs (transcribe, embed, tokenize, codec fine-tuning,
    # training, eval), unless the stage names its own device. VAD (data.segment) keeps its own.
    device: Device = "auto"
    # One seed for training (codec and generator), samples and eval, unless a stage sets its own.
    seed: Optional[Seed] = None
    synth: Optional[SynthConfig] = None
    data: Optional[DataConfig] = None  # preparation from recordings
    dataset: Optional[ModelRef] = None  # or an already tokenized dataset (skips preparation)
    codec_check: CodecCheckStage = field(default_factory=CodecCheckStage)
    codec_finetune: Optional[CodecTrainConfig] = None
    generator: TrainConfig = field(default_factory=TrainConfig)
    export: ExportStage = field(default_factory=ExportStage)
    sample: SampleStage = field(default_factory=SampleStage)
    eval: EvalStage = field(default_factory=EvalStage)
    learn: LearnStage = field(default_factory=LearnStage)
    prefer: PreferStage = field(default_factory=PreferStage)
    # The eval stage writes this recipe's row into WORK_DIR/results.md, and also into this table
    # (between the markers `<!-- results:begin -->` / `<!-- results:end -->`) when one is named:
    # `readme=recipes/README.md` updates the bundled recipes' table. "": none (a run never
    # rewrites a tracked file unasked).
    readme: Optional[ModelRef] = ""
    # Where a key the recipe leaves out comes from (the first template whose keys have values).
    WIRED: ClassVar[dict] = {
        "data.work": "${work_dir}/data",
        "data.tokenize.codec": "${codec}",
        "generator.run_dir": "${work_dir}/generator",
        "generator.data.train": ("${dataset}", str(DatasetLayout("${data.write.out}").hf),
                                 str(DATASET.hf), str(DatasetLayout.in_work("${work_dir}/data").hf)),
        "eval.dataset.from_run": "${generator.run_dir}",  # its data_stats.json names the held-out speakers
        "eval.dataset.replay": "${generator.data.replay}",  # the forgetting line
        "codec_finetune.train_manifest": (str(DATASET.nemo_manifest),
                                          str(DatasetLayout.in_work("${work_dir}/data").nemo_manifest)),
        "codec_finetune.run_dir": "${work_dir}/codec",
        "codec_finetune.codec": "${codec}",
        "prefer.run_dir": "${work_dir}/prefer",
        "prefer.policy": "${work_dir}/export/merged",
        "prefer.dataset": "${generator.data.train}",
        **{key: "${device}" for key in SHARE_DEVICE},
        **{f"{section}.seed": "${seed}" for section in SHARE_SEED},
        **{key: "${speaker_embedder}" for key in SHARE_SPEAKER_EMBEDDER},
        **{f"{section}.tags": "${tags}" for section in SHARE_TAGS},
    }
    RENAMED: ClassVar[dict] = FORMER_TAG_KEYS

    def validate(self) -> list[str]:
        problems = []
        if self.data is None and not self.dataset:
            problems.append("give `data` (recordings to prepare) or `dataset` (an already "
                            "tokenized dataset)")
        if self.eval.enabled and not self.generator.data.val_speakers and not self.eval.dataset.speakers:
            problems.append("the eval stage needs speakers training never saw: set "
                            "generator.data.val_speakers >= 1, name them with eval.dataset.speakers, "
                            "or set eval.enabled: false")
        if self.synth is not None and self.data is None:
            problems.append("`synth` makes recordings; `data` must prepare them")
        return problems


TINY_EMBEDDER = "models/speaker-embedder"  # in the work dir: speaker_embedder: tiny builds it


def recipe_files(folder: Path) -> list[Path]:
    """The recipes under ``folder``: every ``*.yaml``."""
    return sorted(Path(folder).rglob("*.yaml"))


def tiny_embedder(recipe: Recipe) -> Path | None:
    """The folder ``speaker_embedder: tiny`` builds in the work folder (None: another embedder)."""
    return Path(recipe.work_dir) / TINY_EMBEDDER if recipe.speaker_embedder == TINY else None


def made_by_run(recipe: Recipe, ref: str) -> bool:
    """Whether a stage's embedder is the tiny one the run builds (absent before the run)."""
    return (folder := tiny_embedder(recipe)) is not None and ref == str(folder)


def embedder_keys(recipe: Recipe) -> dict[str, str]:
    """The value of every key that loads the speaker embedder (of the sections the recipe has)."""
    return {key: getattr(node, name) for key in LOADS_SPEAKER_EMBEDDER
            for node, name in [_owner(recipe, key)] if node is not None}


def builds_embedder(recipe: Recipe) -> bool:
    """Whether a stage that runs loads the tiny speaker embedder the run builds first."""
    used = embedder_keys(recipe)
    if not recipe.eval.enabled:
        used.pop("eval.scorers.speaker_embedder", None)
    if not recipe.prefer.enabled or recipe.prefer.reward.similarity <= 0:
        used.pop("prefer.reward.speaker_embedder", None)
    return any(made_by_run(recipe, ref) for ref in used.values())


def _owner(recipe: Recipe, key: str):
    """(the section holding a dotted key, the key's name); the section is None when left out."""
    *sections, name = key.split(".")
    node = recipe
    for section in sections:
        node = getattr(node, section, None)
    return node, name


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    path = Path(path)
    raw = read_yaml(path, overrides)
    return resolve(raw, path.parent.resolve(), where=str(path))


def resolve(raw: dict, base: Path, where: str) -> Recipe:
    """The typed recipe: its name and work folder, then the wiring (``Recipe.WIRED``) and every
    check by the loader, then paths relative to the recipe's folder ``base``."""
    name = raw.get("name") or Path(where).stem
    given = raw.get("work_dir")  # relative to the recipe's folder, like its other paths
    work = (base / given if given else Path("runs") / name).resolve()
    raw = {**raw, "name": name, "work_dir": str(work)}
    _refuse_former_work_references(raw, where)
    _refuse_tags_below(raw, where)
    if isinstance(raw.get("data"), dict):
        raw["data"] = normalise_raw(dict(raw["data"]))
    recipe = resolve_paths(from_dict(Recipe, raw, where=where), base)
    if recipe.data is not None:
        recipe.data.tags = only(recipe.data.tags, *READ_BY["data"])
    recipe.generator.eval.tags = only(recipe.generator.eval.tags, *READ_BY["generator.eval"])
    if (folder := tiny_embedder(recipe)) is not None:
        for key, value in embedder_keys(recipe).items():
            if value == TINY:  # the run's own copy, for every stage that loads it
                setattr(*_owner(recipe, key), str(folder))
    return recipe


def _refuse_former_work_references(node, where: str) -> None:
    """``{work}`` in a recipe's strings is now ``${work_dir}``."""
    if isinstance(node, dict):
        for key, value in node.items():
            _refuse_former_work_references(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _refuse_former_work_references(value, f"{where}[{i}]")
    elif isinstance(node, str) and "{work}" in node:
        raise ConfigError(f"{where}: {node!r}: {{work}} is now written ${{work_dir}}")


def _refuse_tags_below(raw: dict, where: str) -> None:
    """A tag's facts are given once, in the recipe's ``tags``; a section's own would part from
    what the others read."""
    given = [s for s in SHARE_TAGS
             if isinstance(section := get_path(raw, s), dict) and "tags" in section]
    if given:
        raise ConfigError(f"{where}: {', '.join(f'{s}.tags' for s in given)}: a tag's facts are "
                          "given once, in the recipe's tags (wired to data, generator.eval and eval)")


README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"
