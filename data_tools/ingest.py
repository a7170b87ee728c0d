"""Stage ingest: find clips and transcripts in the supported layouts (data_tools/layouts.py),
load them as mono audio at the codec's rate, and write an utterance manifest whose ids say where
each clip came from (data_tools/ids.py). Input folders are only ever read.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from data_tools import ids, registry
from kani_adapt.audio import AudioReadError, read, write_clip
from data_tools.config import IngestConfig
from data_tools.layouts import (  # noqa: F401  (the layouts' names, re-exported)
    AUDIO_SUFFIXES, Candidate, discover, inside, read_sidecar, unique_ids,
)
from data_tools.records import Utterance
from data_tools.registry import Kept, Rejected
from data_tools.runner import BaseStage
from kani_adapt.errors import ConfigError

NAME = "ingest"


def load_candidate(c: Candidate, root: Path, cfg: IngestConfig, work: Path,
                   need_text: bool = True) -> Utterance:
    """Load, downmix and resample one clip; raises Rejected when it is unusable."""
    import soundfile as sf

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
    try:
        seconds = sf.info(str(c.audio)).duration
    except Exception as err:
        raise Rejected("unreadable_audio", f"{c.audio}: {err}") from None
    if seconds > cfg.max_file_seconds:
        raise Rejected("too_long_file", f"{seconds:.0f} s > max_file_seconds={cfg.max_file_seconds}")
    loaded = read(c.audio, cfg.sample_rate)
    path = ids.clip_path(work, NAME, c.id)
    write_clip(path, loaded.audio, cfg.sample_rate)
    rel = path.relative_to(work)
    return Utterance(
        id=c.id, audio=rel.as_posix(), text=c.text, speaker=c.speaker, tag=c.tag.lower(),
        duration=len(loaded.audio) / cfg.sample_rate, source=str(c.audio.resolve()),
        orig_sample_rate=loaded.orig_sample_rate, channels=loaded.channels,
        sha256=_sha256(c.audio),
    )


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:  # streamed: a recording can be hours long
        return hashlib.file_digest(fh, "sha256").hexdigest()


def text_later(cfg) -> bool:
    """Whether an enabled later stage writes transcripts (clips without one are then kept)."""
    return any(getattr(st, "writes_text", False) and st.enabled(cfg)
               for st in registry.stages())


class Ingest(BaseStage):
    name = section = NAME
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
        return {**super().settings(ctx), "text_later": text_later(ctx.cfg)}

    def process_item(self, ctx, c: Candidate) -> Kept:
        try:
            return Kept([load_candidate(c, c.root, ctx.cfg.ingest, ctx.work,
                                        need_text=not text_later(ctx.cfg))])
        except AudioReadError as err:
            raise Rejected(err.reason, err.detail) from None


STAGE = Ingest()
