"""The data config: typed dataclasses with defaults; YAML supplies values, unknown keys are errors.

``data-tools prepare data.yaml`` reads this; each stage receives only its own section.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kani_adapt.config import from_dict, read_yaml
from kani_adapt.errors import ConfigError

LAYOUTS = ("folder", "ljspeech", "commonvoice")


@dataclass
class SourceConfig:
    path: str  # input folder
    layout: str = "folder"  # folder (audio + .txt/.lab sidecars), ljspeech, commonvoice
    name: str = ""  # id prefix of its utterances; default: the folder's name
    speaker: str = ""  # speaker of every clip; default: first subfolder (folder), name (ljspeech)
    tag: str = ""  # language/accent tag, stored lower-case
    tsv: str = "validated.tsv"  # Common Voice table inside the folder


@dataclass
class IngestConfig:
    sources: list[SourceConfig] = field(default_factory=list)
    sample_rate: int = 22050  # NanoCodec's rate; every processed clip is mono at this rate
    max_file_seconds: float = 3 * 3600.0  # longer files are rejected (memory), not loaded


@dataclass
class SegmentConfig:
    min_seconds: float = 2.0  # shortest piece cut from a long untranscribed recording
    max_seconds: float = 20.0  # longer clips are cut at pauses (or split by alignment)
    pad_seconds: float = 0.15  # silence kept around speech when trimming
    vad_threshold: float = 0.5  # silero-vad speech probability
    min_silence_seconds: float = 0.3  # pauses shorter than this do not end speech


@dataclass
class AlignConfig:
    enabled: str = "auto"  # auto: run where MFA is installed; on: require it; off: skip
    dictionary: str = ""  # pronunciation dictionary; "": a grapheme dictionary from the corpus
    acoustic_model: str = ""  # MFA acoustic model; "": train one on the corpus itself
    train_config: str = ""  # MFA training config (--config_path); "": MFA's defaults
    mfa_command: str = "mfa"
    num_jobs: int = 2
    min_word_match: float = 0.9  # fraction of transcript words the alignment must contain
    pad_seconds: float = 0.1  # kept before the first and after the last word
    max_seconds: float = 20.0  # long recordings are split at sentence ends below this


@dataclass
class FilterConfig:
    min_seconds: float = 1.0
    max_seconds: float = 20.0  # pretraining dropped clips above 40 s
    max_clipped_fraction: float = 0.001  # samples at full scale
    min_snr_db: float = 15.0  # estimated from frame energies
    max_silence_ratio: float = 0.6  # fraction of 20 ms frames well below speech level
    min_orig_sample_rate: int = 16000  # upsampled narrow-band audio is rejected
    rate_outlier_mad: float = 4.0  # characters/second further than this many MADs from speaker
    near_duplicate_similarity: float = 0.995  # cosine of audio fingerprints (same length)
    language: str = ""  # text normalisation hooks: "" = use each utterance's tag
    numbers_to_words: bool = True  # where num2words supports the language
    tokenizer: str = ""  # generator checkpoint (dir or hub id) for the coverage report


@dataclass
class EmbedConfig:
    model: str = "nineninesix/speaker-emb-tbr"  # local directory or hub id
    batch_size: int = 8
    device: str = "cpu"


@dataclass
class TokenizeConfig:
    codec: str = "nvidia/nemo-nano-codec-22khz-0.6kbps-12.5fps"  # see data_tools/codecs.py
    # Padded audio per batch (clips of similar length share one). Sized for a GPU; on a CPU
    # batching does not pay (benchmarks/README.md): use about 30 s and 4 clips there.
    batch_seconds: float = 160.0
    max_batch_size: int = 32
    device: str = "cpu"


@dataclass
class WriteConfig:
    out: str = ""  # dataset folder; "": <work>/dataset
    drop_repeated_frames: bool = False  # the official prep drops repeats; it changes timing


@dataclass
class DataConfig:
    work: str = "data_work"  # where every stage writes
    max_rejected_fraction: float = 0.5  # a stage fails past this share of rejected items
    ingest: IngestConfig = field(default_factory=IngestConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    write: WriteConfig = field(default_factory=WriteConfig)


def validate(cfg: DataConfig) -> DataConfig:
    problems = []
    for i, src in enumerate(cfg.ingest.sources):
        if src.layout not in LAYOUTS:
            problems.append(f"ingest.sources[{i}].layout must be one of {', '.join(LAYOUTS)}")
    if cfg.align.enabled not in ("auto", "on", "off"):
        problems.append("align.enabled must be auto, on or off")
    if not 0 <= cfg.max_rejected_fraction <= 1:
        problems.append("max_rejected_fraction must be between 0 and 1")
    if cfg.segment.min_seconds >= cfg.segment.max_seconds:
        problems.append("segment.min_seconds must be below segment.max_seconds")
    if problems:
        raise ConfigError("; ".join(problems))
    return cfg


def load_config(path: str | Path) -> DataConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such data config: {path}")
    data = read_yaml(path)  # size, depth, duplicate keys and alias bombs guarded there
    cfg = validate(from_dict(DataConfig, normalise_raw(data), where=str(path)))
    return resolve_paths(cfg, path.parent)


def normalise_raw(data):
    """YAML 1.1 reads on/off as booleans; for the align switch that is what was meant."""
    align = data.get("align") if isinstance(data, dict) else None
    if isinstance(align, dict) and isinstance(align.get("enabled"), bool):
        align["enabled"] = "on" if align["enabled"] else "off"
    return data


def resolve_paths(cfg: DataConfig, base: Path) -> DataConfig:
    """Relative paths in a config are relative to the config file's folder, not the shell."""
    base = Path(base)
    cfg.work = str((base / cfg.work).resolve())
    for src in cfg.ingest.sources:
        src.path = str((base / src.path).resolve())
    if cfg.write.out:
        cfg.write.out = str((base / cfg.write.out).resolve())
    # Model paths may also be hub ids ("org/name"): resolved only where the local path exists.
    for section, key in (("filter", "tokenizer"), ("embed", "model"), ("align", "dictionary"),
                         ("align", "acoustic_model"), ("align", "train_config")):
        value = getattr(getattr(cfg, section), key)
        if value and (base / value).exists():
            setattr(getattr(cfg, section), key, str((base / value).resolve()))
    return cfg
