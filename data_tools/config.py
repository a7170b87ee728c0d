"""The data config: typed dataclasses with defaults; YAML supplies values, unknown keys are errors.

``data-tools prepare data.yaml`` reads this; each stage receives only its own section. Checks
live on the sections, in the loader's terms (kani_adapt/config.py): ``RANGES`` for every number
(a threshold that may lie below zero - dB, log-probability, cosine - has none), ``Literal``
choices, and ``validate`` for rules across keys; the loader reports every problem at once.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from kani_adapt.config.shared import Device
from kani_adapt.config.defaults import MAX_CLIP_SECONDS, NANOCODEC_HUB_ID, SPEAKER_EMBEDDER_HUB_ID
from kani_adapt.config.typed import from_dict
from kani_adapt.config.load import read_yaml
from kani_adapt.core.errors import ConfigError
from kani_adapt.config.wiring import LocalPath, ModelRef, resolve_paths
from kani_adapt.text.tags import Tags

Layout = Literal["folder", "ljspeech", "commonvoice"]  # readers in data_tools/inputs/layouts.py
Switch = Literal["auto", "on", "off"]  # a stage that needs a tool: auto runs it where it is found


def _ordered(cfg, low: str, high: str) -> list[str]:
    """The problem when setting ``low`` is not below setting ``high`` (both of ``cfg``)."""
    a, b = getattr(cfg, low), getattr(cfg, high)
    return [] if a < b else [f"{low} ({a}) must be below {high} ({b})"]


@dataclass
class SourceConfig:
    path: LocalPath  # input folder
    layout: Layout = "folder"  # folder (audio + .txt/.lab sidecars), ljspeech, commonvoice
    name: str = ""  # id prefix of its utterances; default: the folder's name
    speaker: str = ""  # speaker of every clip; default: first subfolder (folder), name (ljspeech)
    tag: str = ""  # language/accent tag, stored lower-case
    tsv: str = "validated.tsv"  # Common Voice table inside the folder

    def validate(self) -> list[str]:
        return [] if self.path else ["path is empty: name the input folder"]


@dataclass
class IngestConfig:
    sources: list[SourceConfig] = field(default_factory=list)
    sample_rate: int = 22050  # NanoCodec's rate; every processed clip is mono at this rate
    max_file_seconds: float = 3 * 3600.0  # longer files are rejected (memory), not loaded
    max_transcript_bytes: int = 1_000_000  # larger transcripts (files, table lines) are
    #                                        rejected unread; 1 MB is ~18 hours of speech

    RANGES: ClassVar[dict[str, str]] = {"sample_rate": "> 0", "max_file_seconds": "> 0",
                                        "max_transcript_bytes": "> 0"}


@dataclass
class SegmentConfig:
    min_seconds: float = 2.0  # shortest piece cut from a long untranscribed recording
    max_seconds: float = MAX_CLIP_SECONDS  # longer clips are cut at pauses (or split by alignment)
    pad_seconds: float = 0.15  # silence kept around speech when trimming
    vad_threshold: float = 0.5  # silero-vad speech probability
    min_silence_seconds: float = 0.3  # pauses shorter than this do not end speech
    device: Device = "cpu"  # where silero-vad runs (512-sample windows: a GPU rarely pays)
    # One voice per utterance in long recordings (interviews, podcasts): windows are embedded
    # with embed.model, and pieces that span a voice change or lie where another voice speaks
    # than the recording's main one are rejected (voice_change, other_voice). auto: when
    # embed.model is on this machine; on: required; off: never.
    voice_changes: Switch = "auto"
    voice_window_seconds: float = 3.0  # speech per embedded window (embedders want a few s)
    voice_hop_seconds: float = 1.0  # window step: how finely a change is placed
    voice_min_drop: float = 0.25  # cosine drop below the recording's typical window-to-window
    #                               similarity that counts as another voice (at least)

    RANGES: ClassVar[dict[str, str]] = {
        "min_seconds": ">= 0", "max_seconds": "> 0", "pad_seconds": ">= 0",
        "vad_threshold": "[0, 1]", "min_silence_seconds": ">= 0", "voice_window_seconds": "> 0",
        "voice_hop_seconds": "> 0", "voice_min_drop": "[0, 2]"}

    def validate(self) -> list[str]:
        return _ordered(self, "min_seconds", "max_seconds")


@dataclass
class TranscribeConfig:
    # auto: run where the ASR model is on this machine (a folder, or already in the Hugging Face
    # cache), so nothing is fetched unasked and configs without a model behave as before (clips
    # without a transcript are rejected at ingest); on: required (a hub id is fetched); off: skip.
    enabled: Switch = "auto"
    model: ModelRef = "openai/whisper-large-v3"  # Whisper: local folder or hub id
    device: Device = "auto"  # a GPU when there is one (see kani_adapt/core/devices.py)
    batch_size: int = 8  # clips per ASR batch (grouped by length and language)
    # (the language forced on each clip: its tag's, tags.<tag>.asr_language or .language)
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

    RANGES: ClassVar[dict[str, str]] = {  # min_avg_logprob: a log-probability, below zero
        "batch_size": "> 0", "min_language_prob": "[0, 1]", "max_transcript_cer": ">= 0",
        "max_no_speech_prob": "[0, 1]", "max_compression_ratio": ">= 0",
        "max_ngram_repeats": "> 0", "wps_outlier_mads": ">= 0", "min_words_per_second": ">= 0",
        "max_words_per_second": ">= 0"}

    def validate(self) -> list[str]:
        return _ordered(self, "min_words_per_second", "max_words_per_second")


@dataclass
class AlignConfig:
    enabled: Switch = "auto"  # auto: run where MFA is installed; on: require it; off: skip
    dictionary: ModelRef = ""  # pronunciation dictionary; "": a grapheme dictionary from the corpus
    acoustic_model: ModelRef = ""  # MFA acoustic model; "": train one on the corpus itself
    train_config: ModelRef = ""  # MFA training config (--config_path); "": MFA's defaults
    mfa_command: str = "mfa"
    num_jobs: int = 2
    min_word_match: float = 0.9  # fraction of transcript words the alignment must contain
    pad_seconds: float = 0.1  # kept before the first and after the last word
    max_seconds: float = MAX_CLIP_SECONDS  # long recordings are split at sentence ends below this

    RANGES: ClassVar[dict[str, str]] = {"num_jobs": "> 0", "min_word_match": "[0, 1]",
                                        "pad_seconds": ">= 0", "max_seconds": "> 0"}


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
    # The text frontend (kani_adapt.text.frontend): whether numbers, dates and symbols are
    # spelled out (each utterance in its tag's language: tags.<tag>.language)
    numbers_to_words: bool = True
    tokenizer: ModelRef = ""  # generator checkpoint (dir or hub id) for the coverage report

    RANGES: ClassVar[dict[str, str]] = {  # min_snr_db: a level in dB, may lie below zero
        "min_seconds": ">= 0", "max_seconds": "> 0", "max_clipped_fraction": "[0, 1]",
        "max_silence_ratio": "[0, 1]", "min_orig_sample_rate": ">= 0",
        "rate_outlier_mad": ">= 0", "max_chars_per_second": "> 0", "max_text_chars": "> 0",
        "min_dnsmos": ">= 0", "near_duplicate_similarity": "[0, 1]"}

    def validate(self) -> list[str]:
        return _ordered(self, "min_seconds", "max_seconds")


@dataclass
class EmbedConfig:
    model: ModelRef = SPEAKER_EMBEDDER_HUB_ID  # local directory or hub id
    batch_size: int = 8
    device: Device = "auto"  # a GPU when there is one (see kani_adapt/core/devices.py)

    RANGES: ClassVar[dict[str, str]] = {"batch_size": "> 0"}


@dataclass
class OutliersConfig:
    """Clips far from their speaker's centroid embedding (data_tools/speech/consistency.py)."""
    enabled: bool = True
    outlier_mads: float = 3.5  # below median - k * MAD of the speaker's cosines (robust z 3.5)
    min_spread: float = 0.03  # smallest spread assumed, so near-identical clips are not flagged
    min_cosine: float = -1.0  # absolute floor (-1: off; embedder-dependent, ~0.3-0.5 for ECAPA)
    min_clips: int = 5  # fewer clips: only the floor applies

    RANGES: ClassVar[dict[str, str]] = {  # min_cosine: a cosine, -1 to 1
        "outlier_mads": ">= 0", "min_spread": "[0, 1]", "min_clips": ">= 0"}


@dataclass
class TokenizeConfig:
    codec: ModelRef = NANOCODEC_HUB_ID  # .nemo, hub id or size; see kani_adapt/codec/registry.py
    # Padded audio per batch (clips of similar length share one). Sized for a GPU; on a CPU
    # batching does not pay (benchmarks/README.md): use about 30 s and 4 clips there.
    batch_seconds: float = 160.0
    max_batch_size: int = 32
    device: Device = "auto"  # a GPU when there is one (see kani_adapt/core/devices.py)

    RANGES: ClassVar[dict[str, str]] = {"batch_seconds": "> 0", "max_batch_size": "> 0"}


@dataclass
class WriteConfig:
    out: LocalPath = ""  # dataset folder; "": <work>/dataset
    drop_repeated_frames: bool = True  # as the official prep (released weights); changes timing


@dataclass
class RayConfig:
    """Where and how the Ray engine runs (``engine: ray``; data_tools/engines/ray.py)."""
    # "": a local Ray started for the run and stopped after it; "auto": the cluster this machine
    # belongs to (`ray start`); or a cluster address (host:6379, ray://host:10001). On a
    # cluster the work folder must be on a file system every node sees.
    address: str = ""
    num_cpus: int = 0  # local Ray: CPU cores it may use (0: all of this machine's)
    object_store_mb: int = 512  # local Ray: its shared-memory object store (blocks are small)
    workers: int = 0  # workers per stage at most (0: as many as the cluster's CPUs/GPUs allow)
    gpus_per_worker: float = 1.0  # a model stage on a GPU device; 0.25: four workers per GPU
    block_items: int = 256  # items per block at most (a block: one log file, one retry unit)
    max_retries: int = 3  # a block whose worker died is run again this many times

    RANGES: ClassVar[dict[str, str]] = {
        "num_cpus": ">= 0", "object_store_mb": ">= 64", "workers": ">= 0",
        "gpus_per_worker": "(0, 8]", "block_items": "> 0", "max_retries": ">= 0"}


@dataclass
class DataConfig:
    work: LocalPath = "data_work"  # where every stage writes
    max_rejected_fraction: float = 0.5  # a stage fails past this share of rejected items
    # Where the stages' work runs: local (this process, the default) or ray (tasks and actor
    # pools on a Ray cluster, see the ray section); the results are the same.
    engine: Literal["local", "ray"] = "local"
    ingest: IngestConfig = field(default_factory=IngestConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    outliers: OutliersConfig = field(default_factory=OutliersConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    write: WriteConfig = field(default_factory=WriteConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    # What each source tag stands for (kani_adapt.text.tags.Tag): the language its texts are
    # read in (the filter's text frontend, transcript checks) and the one Whisper is told
    # (transcribe). Untagged or unlisted tags: the tag's first part (de_hessian -> de). In a
    # recipe: the recipe's `tags`.
    tags: Tags = field(default_factory=dict)

    RANGES: ClassVar[dict[str, str]] = {"max_rejected_fraction": "[0, 1]"}
    RENAMED: ClassVar[dict[str, str]] = {"transcribe.languages": "tags.<tag>.language",
                                         "filter.language": "tags.<tag>.language"}


ENGINE_KEYS = ("engine", "ray")  # where the work runs: never what it gives


def results_part(cfg: DataConfig) -> dict:
    """The config without where it runs: what the prepared dataset depends on (a recipe that
    switches engines does not redo its later stages)."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ENGINE_KEYS}


def load_config(path: str | Path, overrides: list[str] = ()) -> DataConfig:
    """The data config of a YAML file with dotted ``key=value`` overrides, checked whole."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such data config: {path}")
    data = read_yaml(path, list(overrides))  # size, depth, duplicate keys and alias bombs guarded
    # Relative paths are relative to the config file's folder, not the shell (kani_adapt.config.wiring).
    cfg = resolve_paths(from_dict(DataConfig, normalise_raw(data), where=str(path)), path.parent)
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
    """YAML 1.1 reads on/off as booleans; for the auto/on/off switches that is what was meant."""
    for name, key in SWITCHES:
        section = data.get(name) if isinstance(data, dict) else None
        if isinstance(section, dict) and isinstance(section.get(key), bool):
            section[key] = "on" if section[key] else "off"
    return data


SWITCHES = (("align", "enabled"), ("transcribe", "enabled"), ("segment", "voice_changes"))
