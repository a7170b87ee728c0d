"""Where the recordings and transcripts of each input layout are, read without trusting them.

Layouts: ``folder`` (audio files with ``.txt``/``.lab`` sidecars, speaker = first subfolder;
a long recording with one transcript is just a folder item), ``ljspeech`` (``metadata.csv`` +
``wavs/``), ``commonvoice`` (a TSV such as ``validated.tsv`` + ``clips/``), ``contribution``
(what ``data-tools contribute package`` writes: parquet with the audio inside, a local folder or
a hub id; data_tools/inputs/package.py).

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Literal

from data_tools.inputs import ids, package
from data_tools.inputs.package import Packed
from kani_adapt.audio import AUDIO_SUFFIXES  # noqa: F401 (libsndfile's formats and FFmpeg's)
from kani_adapt.config.wiring import LocalPath
from kani_adapt.core.errors import ConfigError

MAX_TRANSCRIPT_BYTES = 1_000_000
Layout = Literal["folder", "ljspeech", "commonvoice", "contribution"]  # the readers below


@dataclass
class SourceConfig:
    """One input folder of ``ingest.sources`` (the ingest stage's section)."""

    path: LocalPath = ""  # input folder
    # folder (audio + .txt/.lab sidecars), ljspeech, commonvoice, contribution (the folder
    # `data-tools contribute package` wrote, or its hub id in `hub`)
    layout: Layout = "folder"
    name: str = ""  # id prefix of its utterances; default: the folder's name
    # speaker of every clip; default: first subfolder (folder), name (ljspeech), the client
    # (commonvoice), the speaker column (contribution)
    speaker: str = ""
    tag: str = ""  # language/accent tag, stored lower-case; contribution: default its accents
    tsv: str = "validated.tsv"  # Common Voice table inside the folder
    hub: str = ""  # contribution: a packaged contribution's hub dataset id (owner/name), for path
    splits: list[str] = field(default_factory=list)  # contribution: the splits read ([]: all)

    def validate(self) -> list[str]:
        if self.hub and self.layout != "contribution":
            return [f"hub is for layout: contribution (a packaged contribution), not {self.layout}"]
        if self.hub and self.path:
            return ["give path (a local folder) or hub (a dataset id), not both"]
        bad = sorted(set(self.splits) - set(package.SPLITS))
        if bad:
            return [f"splits {bad} are not splits of a package; use {list(package.SPLITS)}"]
        return [] if self.path or self.hub else ["path is empty: name the input folder"]


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
    packed: Packed | None = None  # contribution: the clip's bytes are this row of ``audio``
    seconds: float | None = None  # contribution: its length as packaged (read before decoding)


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
    return ids.make_id(name, f"{prefix}/{raw}" if prefix else raw), ""


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


def discover_contribution(src: SourceConfig, name: str, limit: int,
                          root: Path | None = None) -> list[Candidate]:
    """One candidate per row of a packaged contribution; its audio is the row of its parquet
    file (``packed``), read by ingest within the contribution gate's bounds."""
    root, items = root or package.locate(src.path, src.hub), []
    for split, path in package.shards(root):
        if src.splits and split not in src.splits:
            continue
        rel = path.relative_to(root).as_posix()
        for row in package.rows(path, limit):
            where = f"{rel}:row {row.number}"
            item_id, error = _table_id(name, row.id, "", row.number)
            error = error or row.text_error
            items.append(Candidate(item_id, path, row.text if not error else None,
                                   src.speaker or row.speaker or name, src.tag or row.accent,
                                   where, error, packed=row.packed, seconds=row.seconds))
    return items


DISCOVER = {"folder": discover_folder, "ljspeech": discover_ljspeech,
            "commonvoice": discover_commonvoice, "contribution": discover_contribution}


def source_root(src: SourceConfig) -> Path:
    """The folder a source is read from (a hub id: its snapshot in the Hugging Face cache)."""
    if src.layout == "contribution":
        return package.locate(src.path, src.hub)
    root = Path(src.path)
    if not root.is_dir():
        raise ConfigError(f"ingest source {root} is not a folder")
    return root


def source_name(src: SourceConfig) -> str:
    """The id prefix of a source's items: its ``name``, else its folder's (or hub id's) name."""
    return ids.safe_part(src.name or (src.hub.rsplit("/", 1)[-1] if src.hub else Path(src.path).name))


def discover(src: SourceConfig, limit: int = MAX_TRANSCRIPT_BYTES) -> list[Candidate]:
    root = source_root(src)
    if src.layout == "contribution":
        found = discover_contribution(src, source_name(src), limit, root)
    else:
        found = DISCOVER[src.layout](src, source_name(src), limit)
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
            c = replace(c, id=f"{c.id}#dup{count[c.id] - 1:03d}", text=None,
                        error="duplicate_id", spoken="",
                        detail=f"another item already has the id {c.id}: "
                               f"{c.source if c.packed else c.audio}")
        out.append(c)
    return out
