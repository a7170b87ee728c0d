"""The recipe schema: what one adaptation (a language or an accent) needs, stage by stage.

A recipe states only its choices; defaults live in the dataclasses of each stage (data tools,
codec fine-tuning, generator training). The loader fills in the wiring between stages (where
the prepared dataset lands, which codec tokenizes and decodes) unless the recipe sets it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional

from kani_adapt.defaults import MAX_CLIP_SECONDS, NANOCODEC_HUB_ID
from data_tools.config import DataConfig, normalise_raw, resolve_paths
from kani_adapt import devices
from kani_adapt.codec.train_config import CodecTrainConfig
from kani_adapt.common_config import Device, Seed
from kani_adapt.config import from_dict, read_yaml
from kani_adapt.errors import ConfigError
from kani_adapt.eval.config import EvalConfig
from kani_adapt.training.config import TrainConfig

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
    max_frames: int = 500
    seed: Seed = 0
    RANGES: ClassVar[dict] = {"max_frames": ">= 1"}


@dataclass
class EvalStage(EvalConfig):
    """Base vs adapted on held-out speakers of the dataset (and the generator's replay set, the
    forgetting line), with the fields of ``kani-adapt eval --config``. The loader fills in the
    codec, the dataset's held-out speakers (from the generator run) and the replay set."""

    enabled: bool = True
    base: str = ""  # checkpoint compared against; default: generator.model.init (a size: rebuilt)


@dataclass
class Recipe:
    name: str = ""
    description: str = ""
    work_dir: str = ""  # default: runs/<name> next to the shell's working directory
    codec: str = NANOCODEC  # tokenizes the data and decodes samples (.nemo, hub id, size)
    speaker_embedder: str = "nineninesix/speaker-emb-tbr"  # or "tiny" (random, for demos)
    # Where every stage that runs a model runs (transcribe, embed, tokenize, codec fine-tuning,
    # training, eval), unless the stage names its own device. VAD (data.segment) keeps its own.
    device: Device = "auto"
    # One seed for training (codec and generator), samples and eval, unless a stage sets its own.
    seed: Optional[Seed] = None
    synth: Optional[SynthConfig] = None
    data: Optional[DataConfig] = None  # preparation from recordings
    dataset: Optional[str] = None  # or an already tokenized dataset (skips preparation)
    codec_check: CodecCheckStage = field(default_factory=CodecCheckStage)
    codec_finetune: Optional[CodecTrainConfig] = None
    generator: TrainConfig = field(default_factory=TrainConfig)
    export: ExportStage = field(default_factory=ExportStage)
    sample: SampleStage = field(default_factory=SampleStage)
    eval: EvalStage = field(default_factory=EvalStage)
    # Results table the eval stage writes this recipe's row into (between the markers
    # `<!-- results:begin -->` / `<!-- results:end -->`); default: a README.md with those markers
    # in the recipe's folder or the folder above (recipes/README.md for the bundled recipes).
    readme: str = ""


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    path = Path(path)
    raw = read_yaml(path, overrides)
    return resolve(raw, path.parent.resolve(), where=str(path))


def resolve(raw: dict, base: Path, where: str) -> Recipe:
    """Fill the wiring between stages, then build and check the typed recipe."""
    raw = copy.deepcopy(raw)
    name = raw.get("name") or Path(where).stem
    work = Path(raw.get("work_dir") or Path("runs") / name).resolve()
    raw["name"], raw["work_dir"] = name, str(work)
    codec = raw.get("codec", NANOCODEC)
    _share_device_and_seed(raw)
    if isinstance(raw.get("data"), dict):
        data = normalise_raw(raw["data"])
        data.setdefault("work", str(work / "data"))
        for source in data.get("ingest", {}).get("sources", []) or []:
            if isinstance(source, dict) and isinstance(source.get("path"), str):
                source["path"] = source["path"].replace("{work}", str(work))
        data.setdefault("tokenize", {}).setdefault("codec", codec)
        embedder = raw.get("speaker_embedder", Recipe.speaker_embedder)
        data.setdefault("embed", {}).setdefault(
            "model", str(work / "models" / "speaker-embedder") if embedder == "tiny" else embedder)
    dataset = raw.get("dataset") or str(work / "data" / "dataset" / "hf")
    gen = raw.setdefault("generator", {})
    gen.setdefault("run_dir", str(work / "generator"))
    gen.setdefault("data", {}).setdefault("train", dataset)
    gen.setdefault("codec", codec)  # training samples are decoded to audio with it
    ev = raw.setdefault("eval", {})
    if isinstance(ev, dict):
        ev.setdefault("codec", codec)  # a fine-tuned codec, when the recipe makes one, wins at run time
        ds = ev.setdefault("dataset", {})
        if isinstance(ds, dict):
            ds.setdefault("from_run", gen["run_dir"])  # its data_stats.json names the held-out speakers
            replay = gen.get("data", {}).get("replay")
            if replay:
                ds.setdefault("replay", replay)
    raw.setdefault("readme", _default_readme(base))
    if isinstance(raw.get("codec_finetune"), dict):
        ft = raw["codec_finetune"]
        ft.setdefault("train_manifest", str(work / "data" / "dataset" / "nemo_manifest.jsonl"))
        ft.setdefault("run_dir", str(work / "codec"))
        ft.setdefault("codec", codec)
    _relative_to(base, raw, ["dataset"], ["codec"], ["generator", "data", "train"],
                 ["generator", "data", "replay"], ["generator", "model", "init"], ["generator", "codec"],
                 ["eval", "codec"], ["eval", "base"], ["eval", "dataset", "replay"], ["readme"],
                 ["codec_finetune", "train_manifest"], ["codec_finetune", "val_manifest"],
                 ["codec_finetune", "codec"])
    recipe = from_dict(Recipe, raw, where=where)
    if recipe.data is not None:
        resolve_paths(recipe.data, base)
    if recipe.data is None and not recipe.dataset:
        raise ConfigError(f"{where}: give `data` (recordings to prepare) or `dataset` "
                          "(an already tokenized dataset)")
    if recipe.eval.enabled and not recipe.generator.data.val_speakers and not recipe.eval.dataset.speakers:
        raise ConfigError(f"{where}: the eval stage needs speakers training never saw: set "
                          "generator.data.val_speakers >= 1, name them with eval.dataset.speakers, "
                          "or set eval.enabled: false")
    if recipe.synth is not None and recipe.data is None:
        raise ConfigError(f"{where}: `synth` makes recordings; `data` must prepare them")
    return recipe


# (section path, key) that take the recipe's device / seed unless the recipe sets them there
DEVICE_KEYS = (("data", "transcribe"), ("data", "embed"), ("data", "tokenize"),
               ("codec_finetune",), ("generator", "trainer"), ("eval",))
SEED_KEYS = (("codec_finetune",), ("generator", "trainer"), ("sample",), ("eval",))


def _share_device_and_seed(raw: dict) -> None:
    """Copy the recipe's device and seed into each stage that did not name its own. A wrong
    value is left to the loader, which reports it once, at the recipe's own key."""
    device, seed = raw.get("device"), raw.get("seed")
    shared = [("device", DEVICE_KEYS)] if isinstance(device, str) and not devices.problem(device) else []
    if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
        shared.append(("seed", SEED_KEYS))
    for key, paths in shared:
        for path in paths:
            section = _section(raw, path)
            if section is not None:
                section.setdefault(key, raw[key])


def _section(raw: dict, path: tuple[str, ...]) -> dict | None:
    """The section at ``path`` (made when missing); None for an optional stage the recipe does
    not run, or a section of the wrong type (the loader reports that)."""
    if path[0] in ("data", "codec_finetune") and not isinstance(raw.get(path[0]), dict):
        return None
    node = raw
    for part in path:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            return None
    return node


def _relative_to(base: Path, raw: dict, *keys: list[str]) -> None:
    """Paths written ./x or ../x (or existing next to the recipe) are relative to the recipe's
    folder; anything else (hub ids such as org/name, size names) is left as it is."""
    for key in keys:
        node = raw
        for part in key[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        value = node.get(key[-1]) if isinstance(node, dict) else None
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            continue
        if value.startswith(("./", "../")) or (base / value).exists():
            node[key[-1]] = str((base / value).resolve())


README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def _default_readme(base: Path) -> str:
    for folder in (base, base.parent):
        readme = folder / "README.md"
        if readme.is_file() and README_BEGIN in readme.read_text(encoding="utf-8"):
            return str(readme)
    return ""
