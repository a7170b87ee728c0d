"""The data config: typed dataclasses with defaults; YAML supplies values, unknown keys are errors.

``data-tools prepare data.yaml`` reads this; each stage receives only its own section.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path

from kani_adapt.defaults import MAX_CLIP_SECONDS, NANOCODEC_HUB_ID
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
    max_transcript_bytes: int = 1_000_000  # larger transcripts (files, table lines) are
    #                                        rejected unread; 1 MB is ~18 hours of speech


@dataclass
class SegmentConfig:
    min_seconds: float = 2.0  # shortest piece cut from a long untranscribed recording
    max_seconds: float = MAX_CLIP_SECONDS  # longer clips are cut at pauses (or split by alignment)
    pad_seconds: float = 0.15  # silence kept around speech when trimming
    vad_threshold: float = 0.5  # silero-vad speech probability
    min_silence_seconds: float = 0.3  # pauses shorter than this do not end speech
    device: str = "cpu"  # where silero-vad runs (512-sample windows: a GPU rarely pays)


@dataclass
class TranscribeConfig:
    # auto: run where the ASR model is on this machine (a folder, or already in the Hugging Face
    # cache), so nothing is fetched unasked and configs without a model behave as before (clips
    # without a transcript are rejected at ingest); on: required (a hub id is fetched); off: skip.
    enabled: str = "auto"
    model: str = "openai/whisper-large-v3"  # Whisper: local folder or hub id
    device: str = "cpu"
    batch_size: int = 8  # clips per ASR batch (grouped by length and language)
    languages: dict[str, str] = field(default_factory=dict)  # tag -> Whisper language code;
    #                                     unmapped tags use their first part (de_hessian -> de)
    detect_language: bool = False  # detect instead of forcing, and reject other languages
    min_language_prob: float = 0.5  # with detect_language: the tag's language must reach this
    verify: bool = True  # clips that came with a transcript: compare it with what ASR heard
    # Character error rate (normalised texts) above which a given transcript is wrong: Whisper
    # large-v3 on clean read speech is ~2-5 %, on accented speech ~10-20 %; another clip's
    # text ~80 %+.
    max_transcript_cer: float = 0.3
    # Hallucination guards on transcripts the ASR writes (Whisper's own fallback thresholds):
    min_avg_logprob: float = -1.0  # mean token log-probability
    max_no_speech_prob: float = 0.6  # probability of the no-speech token
    max_compression_ratio: float = 2.4  # zlib ratio of the text: loops compress well
    max_ngram_repeats: int = 4  # the same 1-4 word n-gram this many times in a row: a loop
    wps_outlier_mads: float = 4.0  # words/s further than this many MADs from the speaker's median
    min_words_per_second: float = 0.5  # absolute range for every speaker (read speech ~2-3.5)
    max_words_per_second: float = 6.0


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
    max_seconds: float = MAX_CLIP_SECONDS  # long recordings are split at sentence ends below this


@dataclass
class FilterConfig:
    min_seconds: float = 1.0
    max_seconds: float = MAX_CLIP_SECONDS  # pretraining dropped clips above 40 s
    max_clipped_fraction: float = 0.001  # samples at full scale
    min_snr_db: float = 15.0  # estimated from frame energies
    max_silence_ratio: float = 0.6  # fraction of 20 ms frames well below speech level
    min_orig_sample_rate: int = 16000  # upsampled narrow-band audio is rejected
    rate_outlier_mad: float = 4.0  # characters/second further than this many MADs from speaker
    max_chars_per_second: float = 30.0  # absolute ceiling (read speech: ~10-17 letters/s)
    max_text_chars: int = 1000  # per clip; 20 s of very fast speech is ~600
    # DNSMOS (P.808, P.835 OVRL/SIG/BAK) per clip: columns in the dataset and a histogram in the
    # report. Off by default: it costs ~0.5-1 s of CPU per clip.
    dnsmos: bool = False
    # OVRL floor when dnsmos is on. Emilia kept OVRL >= 3.0 for real recordings, but clean
    # espeak-ng speech scores only 2.7-2.9 (noise at 10 dB SNR brings it to ~2.0), so 3.0 would
    # empty the synthetic demo; 2.4 keeps clean synthetic speech and drops audibly noisy clips.
    # Set 3.0 for Emilia's bar on real recordings.
    min_dnsmos: float = 2.4
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
class OutliersConfig:
    """Clips far from their speaker's centroid embedding (data_tools/consistency.py)."""
    enabled: bool = True
    outlier_mads: float = 3.5  # below median - k * MAD of the speaker's cosines (robust z 3.5)
    min_spread: float = 0.03  # smallest spread assumed, so near-identical clips are not flagged
    min_cosine: float = -1.0  # absolute floor (-1: off; embedder-dependent, ~0.3-0.5 for ECAPA)
    min_clips: int = 5  # fewer clips: only the floor applies


@dataclass
class TokenizeConfig:
    codec: str = NANOCODEC_HUB_ID  # see data_tools/codecs.py
    # Padded audio per batch (clips of similar length share one). Sized for a GPU; on a CPU
    # batching does not pay (benchmarks/README.md): use about 30 s and 4 clips there.
    batch_seconds: float = 160.0
    max_batch_size: int = 32
    device: str = "cpu"


@dataclass
class WriteConfig:
    out: str = ""  # dataset folder; "": <work>/dataset
    drop_repeated_frames: bool = True  # as the official prep (released weights); changes timing


@dataclass
class DataConfig:
    work: str = "data_work"  # where every stage writes
    max_rejected_fraction: float = 0.5  # a stage fails past this share of rejected items
    ingest: IngestConfig = field(default_factory=IngestConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    outliers: OutliersConfig = field(default_factory=OutliersConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    write: WriteConfig = field(default_factory=WriteConfig)


# Range rules of the numeric settings; every other number must be finite and 0 or more.
POSITIVE = {"ingest.sample_rate", "ingest.max_file_seconds", "ingest.max_transcript_bytes",
            "segment.max_seconds", "align.num_jobs", "align.max_seconds", "filter.max_seconds",
            "filter.max_chars_per_second", "filter.max_text_chars", "embed.batch_size",
            "tokenize.batch_seconds", "tokenize.max_batch_size", "transcribe.batch_size",
            "transcribe.max_ngram_repeats"}
FRACTIONS = {"max_rejected_fraction", "segment.vad_threshold", "align.min_word_match",
             "filter.max_clipped_fraction", "filter.max_silence_ratio",
             "filter.near_duplicate_similarity", "transcribe.min_language_prob",
             "transcribe.max_no_speech_prob", "outliers.min_spread"}
# thresholds that may lie below zero: dB, log-probabilities, cosines
SIGNED = {"filter.min_snr_db", "transcribe.min_avg_logprob", "outliers.min_cosine"}
ORDERED = (("segment.min_seconds", "segment.max_seconds"),
           ("filter.min_seconds", "filter.max_seconds"),
           ("transcribe.min_words_per_second", "transcribe.max_words_per_second"))


def _numbers(obj, prefix: str = ""):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _numbers(value, f"{prefix}{f.name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield f"{prefix}{f.name}", value


def range_problems(cfg: DataConfig) -> list[str]:
    """Every numeric setting out of its range (NaN and infinity refused), all at once."""
    problems, values = [], dict(_numbers(cfg))
    for key, value in values.items():
        if not math.isfinite(value):
            problems.append(f"{key} must be a finite number, got {value}")
        elif key in FRACTIONS and not 0 <= value <= 1:
            problems.append(f"{key} must be between 0 and 1, got {value}")
        elif key in POSITIVE and not value > 0:
            problems.append(f"{key} must be above 0, got {value}")
        elif key not in SIGNED and value < 0:
            problems.append(f"{key} must be 0 or more, got {value}")
    for low, high in ORDERED:
        if values[low] >= values[high]:  # False for NaN, reported above
            problems.append(f"{low} ({values[low]}) must be below {high} ({values[high]})")
    return problems


def validate(cfg: DataConfig) -> DataConfig:
    """All problems of the config in one error (``data-tools check`` shows them)."""
    problems = []
    for i, src in enumerate(cfg.ingest.sources):
        if src.layout not in LAYOUTS:
            problems.append(f"ingest.sources[{i}].layout must be one of {', '.join(LAYOUTS)}")
        if not src.path:
            problems.append(f"ingest.sources[{i}].path is empty: name the input folder")
    for section in ("align", "transcribe"):
        if getattr(cfg, section).enabled not in ("auto", "on", "off"):
            problems.append(f"{section}.enabled must be auto, on or off")
    problems += range_problems(cfg)
    if problems:
        raise ConfigError("; ".join(problems))
    return cfg


def load_config(path: str | Path, overrides: list[str] = ()) -> DataConfig:
    """The data config of a YAML file with dotted ``key=value`` overrides, checked whole."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such data config: {path}")
    data = read_yaml(path, list(overrides))  # size, depth, duplicate keys and alias bombs guarded
    cfg = validate(from_dict(DataConfig, normalise_raw(data), where=str(path)))
    cfg = resolve_paths(cfg, path.parent)
    check_folders(cfg)
    return cfg


def check_folders(cfg: DataConfig) -> None:
    """Nothing is ever written into an input folder: the work and dataset folders lie apart
    from every source (checked before anything is created)."""
    outputs = [("work", Path(cfg.work))] + ([("write.out", Path(cfg.write.out))]
                                            if cfg.write.out else [])
    for src in cfg.ingest.sources:
        root = Path(src.path).resolve()
        for key, out in outputs:
            out = out.resolve()
            if out == root or root in out.parents or out in root.parents:
                raise ConfigError(f"{key} folder {out} and input folder {root} overlap; choose a "
                                  f"{key} folder outside the recordings (and not above them)")


def sections() -> list[tuple[str, type]]:
    """(name, dataclass) of every section of the data config."""
    hints = typing.get_type_hints(DataConfig)
    return [(name, tp) for name, tp in hints.items() if dataclasses.is_dataclass(tp)]


def normalise_raw(data):
    """YAML 1.1 reads on/off as booleans; for the enabled switches that is what was meant."""
    for name in ("align", "transcribe"):
        section = data.get(name) if isinstance(data, dict) else None
        if isinstance(section, dict) and isinstance(section.get("enabled"), bool):
            section["enabled"] = "on" if section["enabled"] else "off"
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
    for section, key in (("filter", "tokenizer"), ("embed", "model"), ("transcribe", "model"),
                         ("align", "dictionary"),
                         ("align", "acoustic_model"), ("align", "train_config")):
        value = getattr(getattr(cfg, section), key)
        if value and (base / value).exists():
            setattr(getattr(cfg, section), key, str((base / value).resolve()))
    return cfg
