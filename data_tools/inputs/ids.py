"""Ids are never paths: the one place that turns what an input names into an utterance id, and
an id into a file name inside the work folder.

An id says where an item came from (``<source>/<speaker folder>/<file stem>``), but every part is
restricted to ``[A-Za-z0-9._-]``, never empty, ``.`` or ``..``; whatever had to change gets a
hash of the original, so names that sanitise alike stay apart. Cuts of a recording (segment,
align, transcribe) append ``#<kind><nnn>``: ``#`` never occurs in a sanitised id, so a cut can
never take the id (or the file) of another input.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from kani_adapt.core.errors import DataError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*(#[a-z]+\d+)*")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:6]


def safe_part(part: str) -> str:
    """One path component: unsafe characters become ``_``; '', '.' and '..' become '_'."""
    safe = _UNSAFE.sub("_", part)
    return "_" if safe.strip(".") == "" else safe


def make_id(source: str, relative: str) -> str:
    """``<source>/<relative path without its suffix>``, each part made safe (see module doc).
    Raises ValueError when ``relative`` names nothing (empty, or only separators)."""
    name = re.split(r"[/\\]", relative)[-1]
    stem = relative.rsplit(".", 1)[0] if "." in name.lstrip(".") else relative
    parts = [p for p in re.split(r"[/\\]+", stem) if p]
    if not parts:
        raise ValueError(f"empty id {relative!r}")
    safe = "/".join(safe_part(p) for p in parts)
    if safe != stem:  # keep two names that sanitise alike apart
        safe += "-" + _digest(stem)
    return f"{safe_part(source)}/{safe}"


def child(utt_id: str, kind: str, index: int) -> str:
    """The id of piece ``index`` cut from ``utt_id`` (kind: seg, sent, cut)."""
    return f"{utt_id}#{kind}{index:03d}"


def clip_path(work: Path, stage: str, utt_id: str) -> Path:
    """``<work>/<stage>/audio/<id>.wav``, refused unless the id is a sanitised one (so the file
    lies inside the work folder whatever an input file or table said)."""
    if not _SAFE_ID.fullmatch(utt_id) or any(p in (".", "..") for p in re.split("[/#]", utt_id)):
        raise DataError(f"{stage}: id {utt_id!r} is not a safe file name (ids come from "
                        "data_tools.inputs.ids.make_id)")
    return Path(work) / stage / "audio" / f"{utt_id}.wav"
