"""Where the recordings and transcripts of each input layout are, read without trusting them.

Layouts: ``folder`` (audio files with ``.txt``/``.lab`` sidecars, speaker = first subfolder;
a long recording with one transcript is just a folder item), ``ljspeech`` (``metadata.csv`` +
``wavs/``), ``commonvoice`` (a TSV such as ``validated.tsv`` + ``clips/``).

Discovery only reads. Names from tables become ids through ``data_tools.inputs.ids``; a transcript is
read up to a byte limit (a 50 MB "transcript" is refused unread); symlinked folders are followed
only where they stay inside the input folder; a link that loops is refused for that file alone.
Whatever is refused becomes a candidate carrying its reason, so it gets a rejection record.
"""
from __future__ import annotations

import csv
import errno
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from data_tools.inputs import ids
from kani_adapt.audio import AUDIO_SUFFIXES  # noqa: F401 (libsndfile's formats and FFmpeg's)
from kani_adapt.config.wiring import LocalPath
from kani_adapt.core.errors import ConfigError

MAX_TRANSCRIPT_BYTES = 1_000_000
Layout = Literal["folder", "ljspeech", "commonvoice"]  # the readers below


@dataclass
class SourceConfig:
    """One input folder of ``ingest.sources`` (the ingest stage's section)."""

    path: LocalPath  # input folder
    layout: Layout = "folder"  # folder (audio + .txt/.lab sidecars), ljspeech, commonvoice
    name: str = ""  # id prefix of its utterances; default: the folder's name
    speaker: str = ""  # speaker of every clip; default: first subfolder (folder), name (ljspeech)
    tag: str = ""  # language/accent tag, stored lower-case
    tsv: str = "validated.tsv"  # Common Voice table inside the folder

    def validate(self) -> list[str]:
        return [] if self.path else ["path is empty: name the input folder"]


@dataclass
class Candidate:
    id: str
    audio: Path
    text: str | None  # None: no transcript could be read (see error)
    speaker: str
    tag: str
    source: str  # file (and table line) the item came from
    error: str = ""  # rejection reason found at discovery
    detail: str = ""
    root: Path | None = None  # the input folder it was found in
    spoken: str = ""  # the reading to speak instead of the text frontend's (``.spoken.txt``)


# Beside clip.wav and clip.txt: how the clip is read where no frontend rule gets it right
# (``clip.spoken.txt``: "null acht neun" for "089"); it becomes the dataset's text_override.
SPOKEN_SUFFIX = ".spoken.txt"


def inside(root: Path, path: Path) -> bool:
    """True when ``path`` (after following symlinks) stays inside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False


def read_sidecar(path: Path, limit: int = MAX_TRANSCRIPT_BYTES) -> tuple[str | None, str]:
    """(text, "") or (None, reason); never reads more than ``limit`` + 1 bytes."""
    if not path.is_file():
        return None, "transcript_not_a_file"
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError:
        return None, "unreadable_transcript"
    if len(data) > limit:
        return None, "transcript_too_long"
    try:
        return data.decode("utf-8").strip(), ""
    except UnicodeDecodeError:
        return None, "transcript_not_utf8"


def _link_problem(path: Path, root: Path) -> tuple[str, str] | None:
    """(reason, detail) when a symlink cannot be followed safely, else None."""
    try:
        target = path.resolve(strict=True)
    except RuntimeError:
        return "symlink_loop", f"{path} is a symlink loop"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symlink_loop", f"{path} is a symlink loop"
        return "broken_link", f"{path} points to nothing ({err.strerror})"
    if not inside(root, target):
        return "outside_input_folder", f"{path} links to {target}, outside {root}"
    return None


def walk(root: Path) -> Iterator[tuple[Path, str, str]]:
    """(path, reason, detail) of every audio file under ``root`` (reason "" when usable) and of
    every folder that is refused. Symlinked folders are followed inside ``root`` only, once."""
    real_root = root.resolve()
    seen = {real_root}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError as err:
            yield folder, "unreadable_folder", f"{folder}: {err.strerror}"
            continue
        for entry in entries:
            path = Path(entry.path)
            audio = path.suffix.lower() in AUDIO_SUFFIXES
            problem = _link_problem(path, root) if entry.is_symlink() else None
            if problem is not None:
                if audio or problem[0] != "broken_link":
                    yield path, *problem
                continue
            if entry.is_dir():  # follows a link that stays inside
                real = path.resolve()
                if real not in seen:
                    seen.add(real)
                    stack.append(path)
                elif entry.is_symlink():  # each folder is read once, by its first path
                    yield path, "symlink_loop", f"{path} leads to {real}, read already"
            elif audio:
                yield path, "", ""


def discover_folder(src: SourceConfig, name: str, limit: int) -> list[Candidate]:
    root = Path(src.path)
    items = []
    for path, reason, detail in sorted(walk(root)):
        rel = path.relative_to(root)
        speaker = src.speaker or (rel.parts[0] if len(rel.parts) > 1 else name)
        text, error = None, reason or "missing_transcript"
        for suffix in (".txt", ".lab") if not reason else ():
            side = path.with_suffix(suffix)
            if side.exists():
                text, error = (None, "outside_input_folder") if not inside(root, side) \
                    else read_sidecar(side, limit)
                detail = f"{side}" if error else ""
                break
        spoken = path.with_suffix(SPOKEN_SUFFIX)
        said = read_sidecar(spoken, limit)[0] if spoken.exists() and inside(root, spoken) else ""
        items.append(Candidate(ids.make_id(name, rel.as_posix()), path, text, speaker, src.tag,
                               str(rel), error if text is None else "", detail,
                               spoken=said or ""))
    return items


def table_lines(path: Path, limit: int) -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None, reason) streamed line by line: one bad line (not UTF-8,
    longer than ``limit`` bytes) does not spoil the others, and no line is read whole."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(iter(lambda: fh.readline(limit + 1), b""), start=1):
            if len(raw) > limit and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                    raw = fh.readline(1 << 20)
                yield n, None, "transcript_too_long"
                continue
            try:
                yield n, raw.decode("utf-8").rstrip("\r\n"), ""
            except UnicodeDecodeError:
                yield n, None, "transcript_not_utf8"


def _table_id(name: str, raw: str, prefix: str, n: int) -> tuple[str, str]:
    """(id, error) of a table row naming ``raw``; an empty name gets the line's id."""
    if not raw.strip("/\\ "):
        return ids.make_id(name, f"line{n}"), "empty_id"
    return ids.make_id(name, f"{prefix}/{raw}"), ""


def discover_ljspeech(src: SourceConfig, name: str, limit: int) -> list[Candidate]:
    root, items = Path(src.path), []
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise ConfigError(f"ljspeech source {root} has no metadata.csv")
    for n, line, bad in table_lines(meta, limit):
        where = f"metadata.csv:{n}"
        if line is None:
            items.append(Candidate(ids.make_id(name, f"line{n}"), root / "?", None,
                                   src.speaker or name, src.tag, where, bad))
            continue
        fields = line.split("|")
        text = (fields[2] if len(fields) > 2 and fields[2].strip() else
                fields[1] if len(fields) > 1 else "").strip()
        item_id, error = _table_id(name, fields[0].strip(), "wavs", n)
        items.append(Candidate(item_id, root / "wavs" / f"{fields[0]}.wav", text,
                               src.speaker or name, src.tag, where,
                               error or ("" if text else "empty_transcript")))
    return items


def discover_commonvoice(src: SourceConfig, name: str, limit: int) -> list[Candidate]:
    root, items = Path(src.path), []
    table = root / src.tsv
    if not table.is_file():
        raise ConfigError(f"commonvoice source {root} has no {src.tsv}")
    lines = table_lines(table, limit)
    first = next(lines, (1, "", ""))[1] or ""
    header = next(csv.reader([first], delimiter="\t", quoting=csv.QUOTE_NONE), [])
    for n, line, bad in lines:
        where = f"{src.tsv}:{n}"
        row = dict(zip(header, next(csv.reader(io.StringIO(line or ""), delimiter="\t",
                                               quoting=csv.QUOTE_NONE), [])))
        clip = row.get("path", f"line{n}") if line is not None else f"line{n}"
        text = (row.get("sentence") or "").strip() if line is not None else None
        error = bad if line is None else "" if text else "empty_transcript"
        item_id, id_error = _table_id(name, clip.strip(), "clips", n)
        items.append(Candidate(item_id, root / "clips" / clip, text,
                               src.speaker or row.get("client_id", name), src.tag, where,
                               id_error or error))
    return items


DISCOVER = {"folder": discover_folder, "ljspeech": discover_ljspeech,
            "commonvoice": discover_commonvoice}


def discover(src: SourceConfig, limit: int = MAX_TRANSCRIPT_BYTES) -> list[Candidate]:
    root = Path(src.path)
    if not root.is_dir():
        raise ConfigError(f"ingest source {root} is not a folder")
    found = DISCOVER[src.layout](src, ids.safe_part(src.name or root.name), limit)
    for c in found:
        c.root = root
    return found


def unique_ids(candidates: list[Candidate]) -> list[Candidate]:
    """The same id twice (a.wav and a.flac, a table line repeated): the first keeps it, the
    others are rejected with a record of their own."""
    count: dict[str, int] = {}
    out = []
    for c in candidates:
        count[c.id] = count.get(c.id, 0) + 1
        if count[c.id] > 1:
            c = Candidate(f"{c.id}#dup{count[c.id] - 1:03d}", c.audio, None, c.speaker, c.tag,
                          c.source, "duplicate_id",
                          f"another item already has the id {c.id}: {c.audio}", c.root)
        out.append(c)
    return out
