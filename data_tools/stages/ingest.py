"""Stage ingest: find clips and transcripts in the supported layouts (data_tools/inputs/layouts.py),
load them as mono audio at the codec's rate, and write an utterance manifest whose ids say where
each clip came from (data_tools/inputs/ids.py). Input folders are only ever read.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from data_tools.inputs import ids, inventory, longaudio
from data_tools.inputs.layouts import (  # noqa: F401  (the layouts' names, re-exported)
    AUDIO_SUFFIXES, Candidate, SourceConfig, discover, inside, read_sidecar, unique_ids,
)
from data_tools.records import Utterance, stage_dir
from data_tools.stages.kit import BaseStage, Kept, Pipeline, Rejected, collect
from kani_adapt.audio import AudioReadError, probe, read, write_clip
from kani_adapt.core import atomic
from kani_adapt.core.errors import ConfigError

NAME = "ingest"
log = logging.getLogger("data_tools")


@dataclass
class IngestConfig:
    sources: list[SourceConfig] = field(default_factory=list)
    sample_rate: int = 22050  # NanoCodec's rate; every processed clip is mono at this rate
    max_file_seconds: float = 3 * 3600.0  # longer files are rejected (memory), not loaded
    max_transcript_bytes: int = 1_000_000  # larger transcripts (files, table lines) are
    #                                        rejected unread; 1 MB is ~18 hours of speech

    RANGES: ClassVar[dict[str, str]] = {"sample_rate": "> 0", "max_file_seconds": "> 0",
                                        "max_transcript_bytes": "> 0"}


def load_candidate(c: Candidate, root: Path, cfg: IngestConfig, work: Path,
                   need_text: bool = True) -> Utterance:
    """Load, downmix and resample one clip; raises Rejected when it is unusable."""
    if not need_text and c.error in ("missing_transcript", "empty_transcript"):
        c = dataclasses.replace(c, text="", error="")  # a later stage writes the text
    if c.error:  # found at discovery: duplicate or empty id, symlink, transcript problems
        raise Rejected(c.error, c.detail or c.source)
    if not c.text and need_text:
        raise Rejected("empty_transcript", c.source)
    if not inside(root, c.audio):
        raise Rejected("outside_input_folder", f"{c.audio} resolves outside {root}")
    if not c.audio.is_file():
        raise Rejected("missing_audio", str(c.audio))
    if c.audio.stat().st_size == 0:
        raise Rejected("empty_audio", f"{c.audio} is a zero-length file")
    probed = probe(c.audio)  # a header that lies is rejected here, unread
    seconds = probed.seconds
    if seconds > cfg.max_file_seconds:
        raise Rejected("too_long_file", f"{seconds:.0f} s > max_file_seconds={cfg.max_file_seconds}")
    path = ids.clip_path(work, NAME, c.id)
    frames, orig_rate, channels = _copy_clip(c.audio, path, cfg.sample_rate, probed)
    rel = path.relative_to(work)
    return Utterance(
        id=c.id, audio=rel.as_posix(), text=c.text, speaker=c.speaker, tag=c.tag.lower(),
        duration=frames / cfg.sample_rate, source=str(c.audio.resolve()),
        orig_sample_rate=orig_rate, channels=channels, sha256=_sha256(c.audio),
        text_override=c.spoken,
    )


def _copy_clip(src: Path, dest: Path, rate: int, probed) -> tuple[int, int, int]:
    """The clip as mono 16-bit WAV at ``rate``; hours-long files stream in bounded memory."""
    if probed.decoder == "libsndfile" and probed.seconds > longaudio.STREAM_SECONDS:
        try:
            return longaudio.stream_clip(src, dest, rate)
        except ValueError as err:
            raise Rejected("nan_samples", str(err)) from None
    loaded = read(src, rate)
    write_clip(dest, loaded.audio, rate)
    return len(loaded.audio), loaded.orig_sample_rate, loaded.channels


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:  # streamed: a recording can be hours long
        return hashlib.file_digest(fh, "sha256").hexdigest()


def text_later(cfg, pipeline: Pipeline) -> bool:
    """Whether an enabled later stage writes transcripts (clips without one are then kept)."""
    return any(getattr(st, "writes_text", False) and st.enabled(cfg) for st in pipeline.stages)


class Ingest(BaseStage):
    name = section = NAME
    config = IngestConfig
    help = "read recordings and transcripts (folder, LJSpeech, Common Voice) as mono clips"
    unit = "file"
    inputs = ()

    def items(self, ctx) -> list[Candidate]:
        cfg: IngestConfig = ctx.cfg.ingest
        if not cfg.sources:
            raise ConfigError("ingest.sources is empty: name at least one input folder")
        return unique_ids([c for s in cfg.sources
                           for c in discover(s, cfg.max_transcript_bytes)])

    def settings(self, ctx) -> dict:
        return {**super().settings(ctx), "text_later": text_later(ctx.cfg, ctx.pipeline)}

    def decide(self, ctx, items: list, results: dict) -> tuple[list, list[dict]]:
        """Kept and rejected items, and ``inputs.json``: the input files no item uses and the
        transcripts that hide characters (both shown in the report)."""
        sources = ctx.cfg.ingest.sources
        tables = {Path(s.path) / ("metadata.csv" if s.layout == "ljspeech" else s.tsv)
                  for s in sources if s.layout != "folder"}
        inputs = {"unused_files": inventory.unused_files([Path(s.path) for s in sources], items,
                                                         tables),
                  "text_warnings": inventory.text_warnings(items)}
        atomic.write_json(stage_dir(ctx.work, NAME) / "inputs.json", inputs)
        if inputs["unused_files"]:
            log.warning("ingest: %d file(s) in the input folders are not used (transcripts "
                        "without audio, other files); listed in the report",
                        len(inputs["unused_files"]))
        if inputs["text_warnings"]:
            log.warning("ingest: %d transcript(s) hold invisible or control characters; "
                        "listed in the report", len(inputs["text_warnings"]))
        return collect(items, results, self.name)

    def process_item(self, ctx, c: Candidate) -> Kept:
        try:
            return Kept([load_candidate(c, c.root, ctx.cfg.ingest, ctx.work,
                                        need_text=not text_later(ctx.cfg, ctx.pipeline))])
        except AudioReadError as err:
            raise Rejected(err.reason, err.detail, _seconds(c)) from None
        except Rejected as rejected:  # weighed by its header, so the report counts its hours
            rejected.seconds = _seconds(c) if rejected.seconds is None else rejected.seconds
            raise


def _seconds(c: Candidate) -> float | None:
    """Length of a rejected file by its header (None: unreadable, or not a file)."""
    try:
        return probe(c.audio).seconds if c.audio.is_file() and inside(c.root, c.audio) else None
    except (AudioReadError, OSError, RuntimeError, ValueError):
        return None


STAGE = Ingest()
