"""Stage 1, ingest: find clips and transcripts in the supported layouts, load them as mono audio
at the codec's rate, and write an utterance manifest whose ids say where each clip came from.

Layouts: ``folder`` (audio files with ``.txt``/``.lab`` sidecars, speaker = first subfolder;
a long recording with one transcript is just a folder item), ``ljspeech`` (``metadata.csv`` +
``wavs/``), ``commonvoice`` (a TSV such as ``validated.tsv`` + ``clips/``).
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from data_tools import ids
from data_tools.audio import AudioError, read_mono, write_clip
from data_tools.config import IngestConfig, SourceConfig
from data_tools.records import Utterance
from data_tools.registry import Kept, Rejected
from data_tools.runner import BaseStage
from kani_adapt.errors import ConfigError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
NAME = "ingest"


@dataclass
class Candidate:
    id: str
    audio: Path
    text: str | None  # None: no transcript could be read (see text_error)
    speaker: str
    tag: str
    source: str  # file (and table line) the item came from
    text_error: str = ""  # reason when text is None
    root: Path | None = None  # the input folder it was found in


def make_id(source_name: str, relative: str) -> str:
    return ids.make_id(source_name, relative)


def _table_id(name: str, raw: str, prefix: str, n: int) -> tuple[str, str]:
    """(id, error) of a table row naming ``raw``; an empty name gets the line's id."""
    if not raw.strip("/\\ "):
        return ids.make_id(name, f"line{n}"), "empty_id"
    return ids.make_id(name, f"{prefix}/{raw}"), ""


def inside(root: Path, path: Path) -> bool:
    """True when ``path`` (after following symlinks) stays inside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError):
        return False


def read_sidecar(path: Path) -> tuple[str | None, str]:
    try:
        return path.read_bytes().decode("utf-8").strip(), ""
    except UnicodeDecodeError:
        return None, "transcript_not_utf8"


def discover_folder(src: SourceConfig, name: str) -> list[Candidate]:
    root = Path(src.path)
    items = []
    for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        rel = audio.relative_to(root)
        speaker = src.speaker or (rel.parts[0] if len(rel.parts) > 1 else name)
        text, error = None, "missing_transcript"
        for suffix in (".txt", ".lab"):
            side = audio.with_suffix(suffix)
            if side.exists():
                text, error = (None, "outside_input_folder") if not inside(root, side) \
                    else read_sidecar(side)
                break
        items.append(Candidate(make_id(name, rel.as_posix()), audio, text, speaker,
                               src.tag, str(rel), error))
    return items


def _table_lines(path: Path) -> list[tuple[int, str | None]]:
    """Lines of a table decoded one by one, so one bad line does not spoil the others."""
    out = []
    for n, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            out.append((n, raw.decode("utf-8")))
        except UnicodeDecodeError:
            out.append((n, None))
    return out


def discover_ljspeech(src: SourceConfig, name: str) -> list[Candidate]:
    root, items = Path(src.path), []
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise ConfigError(f"ljspeech source {root} has no metadata.csv")
    for n, line in _table_lines(meta):
        where = f"metadata.csv:{n}"
        if line is None:
            items.append(Candidate(make_id(name, f"line{n}"), root / "?", None, src.speaker or name,
                                   src.tag, where, "transcript_not_utf8"))
            continue
        fields = line.split("|")
        text = (fields[2] if len(fields) > 2 and fields[2].strip() else
                fields[1] if len(fields) > 1 else "").strip()
        item_id, error = _table_id(name, fields[0].strip(), "wavs", n)
        items.append(Candidate(item_id, root / "wavs" / f"{fields[0]}.wav", text,
                               src.speaker or name, src.tag, where,
                               error or ("" if text else "empty_transcript")))
    return items


def discover_commonvoice(src: SourceConfig, name: str) -> list[Candidate]:
    root, items = Path(src.path), []
    table = root / src.tsv
    if not table.is_file():
        raise ConfigError(f"commonvoice source {root} has no {src.tsv}")
    lines = _table_lines(table)
    header = next(csv.reader([lines[0][1] or ""], delimiter="\t", quoting=csv.QUOTE_NONE))
    for n, line in lines[1:]:
        where = f"{src.tsv}:{n}"
        row = dict(zip(header, next(csv.reader(io.StringIO(line or ""), delimiter="\t",
                                               quoting=csv.QUOTE_NONE), [])))
        clip = row.get("path", f"line{n}") if line is not None else f"line{n}"
        text = (row.get("sentence") or "").strip() if line is not None else None
        error = "transcript_not_utf8" if line is None else "" if text else "empty_transcript"
        item_id, id_error = _table_id(name, clip.strip(), "clips", n)
        items.append(Candidate(item_id, root / "clips" / clip, text,
                               src.speaker or row.get("client_id", name), src.tag, where,
                               id_error or error))
    return items


DISCOVER = {"folder": discover_folder, "ljspeech": discover_ljspeech,
            "commonvoice": discover_commonvoice}


def discover(src: SourceConfig) -> list[Candidate]:
    root = Path(src.path)
    if not root.is_dir():
        raise ConfigError(f"ingest source {root} is not a folder")
    found = DISCOVER[src.layout](src, src.name or root.name)
    for c in found:
        c.root = root
    return found


def unique_ids(candidates: list[Candidate]) -> list[Candidate]:
    """The same id twice (a.wav and a.flac): the first keeps it, the others are rejected."""
    seen: set[str] = set()
    out = []
    for c in candidates:
        if c.id in seen:
            c = Candidate(f"{c.id}#{c.audio.name}", c.audio, None, c.speaker, c.tag, c.source,
                          "duplicate_id", c.root)
        seen.add(c.id)
        out.append(c)
    return out


def load_candidate(c: Candidate, root: Path, cfg: IngestConfig, work: Path) -> Utterance:
    """Load, downmix and resample one clip; raises Rejected when it is unusable."""
    import soundfile as sf

    if c.text_error == "duplicate_id":
        raise Rejected("duplicate_id", f"another file already has this id: {c.audio}")
    if c.text_error == "empty_id":
        raise Rejected("empty_id", f"{c.source} names no file")
    if c.text is None or not c.text:
        raise Rejected(c.text_error or "empty_transcript", c.source)
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
    loaded = read_mono(c.audio, cfg.sample_rate)
    path = ids.clip_path(work, NAME, c.id)
    write_clip(path, loaded.audio, cfg.sample_rate)
    rel = path.relative_to(work)
    return Utterance(
        id=c.id, audio=rel.as_posix(), text=c.text, speaker=c.speaker, tag=c.tag.lower(),
        duration=len(loaded.audio) / cfg.sample_rate, source=str(c.audio.resolve()),
        orig_sample_rate=loaded.orig_sample_rate, channels=loaded.channels,
        sha256=hashlib.sha256(c.audio.read_bytes()).hexdigest(),
    )


def check_folders(cfg) -> None:
    """Nothing is ever written into an input folder: the work and dataset folders lie apart."""
    outputs = [("work", Path(cfg.work))] + ([("write.out", Path(cfg.write.out))]
                                            if cfg.write.out else [])
    for src in cfg.ingest.sources:
        root = Path(src.path).resolve()
        for key, out in outputs:
            out = out.resolve()
            if out == root or root in out.parents or out in root.parents:
                raise ConfigError(f"{key} folder {out} and input folder {root} overlap; choose a "
                                  f"{key} folder outside the recordings (and not above them)")


class Ingest(BaseStage):
    name = section = NAME
    help = "read recordings and transcripts (folder, LJSpeech, Common Voice) as mono clips"
    unit = "file"
    inputs = ()

    def items(self, ctx) -> list[Candidate]:
        cfg: IngestConfig = ctx.cfg.ingest
        if not cfg.sources:
            raise ConfigError("ingest.sources is empty: name at least one input folder")
        check_folders(ctx.cfg)
        return unique_ids([c for s in cfg.sources for c in discover(s)])

    def process_item(self, ctx, c: Candidate) -> Kept:
        try:
            return Kept([load_candidate(c, c.root, ctx.cfg.ingest, ctx.work)])
        except AudioError as err:
            raise Rejected(err.code, err.detail) from None


STAGE = Ingest()
