"""Stage ingest: find clips and transcripts in the supported layouts (data_tools/inputs/layouts.py),
load them as mono audio at the codec's rate, and write an utterance manifest whose ids say where
each clip came from (data_tools/inputs/ids.py). Input folders are only ever read.

A packaged contribution's clip is a parquet row: its bytes are written to a file of the work
folder, read within the contribution gate's bounds (data_tools/inputs/bounds.py) and removed.
The card's licence (and the checks the gate did not run) go into ``inputs.json``'s ``sources``,
and from there into the dataset (``sources.json``) and the adapter card.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from data_tools.inputs import ids, inventory, longaudio, package
from data_tools.inputs.bounds import ClipBounds, decoded_too_long, over_bounds
from data_tools.inputs.layouts import (  # noqa: F401  (the layouts' names, re-exported)
    AUDIO_SUFFIXES, Candidate, SourceConfig, discover, inside, read_sidecar, source_name,
    source_root, unique_ids,
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
    if c.packed is not None:
        return _load_packed(c, cfg, work)
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


def _load_packed(c: Candidate, cfg: IngestConfig, work: Path) -> Utterance:
    """A packaged clip: its bytes unpacked into the work folder, refused past the contribution
    gate's bounds from their size and header, decoded no further than the length bound."""
    path = ids.clip_path(work, NAME, c.id)
    bounds = ClipBounds()
    blob = package.unpack(c.audio, c.packed, work / NAME / "unpacked" / c.id, bounds.max_clip_mb)
    try:
        refused = over_bounds(blob, bounds)
        if refused:
            raise Rejected(*refused.split(": ", 1))
        loaded = read(blob, cfg.sample_rate, max_seconds=bounds.window)
        seconds = len(loaded.audio) / cfg.sample_rate
        if decoded_too_long(seconds, bounds):
            raise Rejected(*decoded_too_long(seconds, bounds).split(": ", 1))
        write_clip(path, loaded.audio, cfg.sample_rate)
        return Utterance(
            id=c.id, audio=path.relative_to(work).as_posix(), text=c.text, speaker=c.speaker,
            tag=c.tag.lower(), duration=seconds, source=f"{c.audio.resolve()}:{c.source.rsplit(':', 1)[-1]}",
            orig_sample_rate=loaded.orig_sample_rate, channels=loaded.channels,
            sha256=_sha256(blob))
    finally:
        blob.unlink(missing_ok=True)


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
    help = ("read recordings and transcripts (folder, LJSpeech, Common Voice, a packaged "
            "contribution) as mono clips")
    unit = "file"
    inputs = ()

    def items(self, ctx) -> list[Candidate]:
        cfg: IngestConfig = ctx.cfg.ingest
        if not cfg.sources:
            raise ConfigError("ingest.sources is empty: name at least one input folder")
        return unique_ids([c for s in cfg.sources
                           for c in discover(s, cfg.max_transcript_bytes)])

    def sources(self, ctx) -> list[dict]:
        """What each packaged contribution's card says of the data as a whole (its licence)."""
        return [package.terms(source_root(s), s.hub or s.path) | {"name": source_name(s)}
                for s in ctx.cfg.ingest.sources if s.layout == "contribution"]

    def settings(self, ctx) -> dict:
        return {**super().settings(ctx), "text_later": text_later(ctx.cfg, ctx.pipeline)}

    def decide(self, ctx, items: list, results: dict) -> tuple[list, list[dict]]:
        """Kept and rejected items, and ``inputs.json``: the input files no item uses and the
        transcripts that hide characters (both shown in the report)."""
        sources = ctx.cfg.ingest.sources
        roots = [source_root(s) for s in sources]
        tables = {root / ("metadata.csv" if s.layout == "ljspeech" else s.tsv)
                  for s, root in zip(sources, roots) if s.layout in ("ljspeech", "commonvoice")}
        tables |= {root / name for s, root in zip(sources, roots) if s.layout == "contribution"
                   for name in ("README.md", "validation.json")}
        inputs = {"unused_files": inventory.unused_files(roots, items, tables),
                  "text_warnings": inventory.text_warnings(items),
                  "sources": self.sources(ctx)}
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
    if c.packed is not None:
        return c.seconds  # as packaged: the bytes were not read, or not readable
    try:
        return probe(c.audio).seconds if c.audio.is_file() and inside(c.root, c.audio) else None
    except (AudioReadError, OSError, RuntimeError, ValueError):
        return None


STAGE = Ingest()
