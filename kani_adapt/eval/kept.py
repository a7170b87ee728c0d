"""What a person put into an eval folder, kept when the eval runs again.

A listening test's ratings (``listening.sqlite`` with SQLite's ``-wal``, ``-shm`` and
``-journal`` files beside it), its results (``listening.json``) and notes (any file whose name
starts with ``notes``) are the work of people: no rerun may delete them. An eval that would write
into a folder holding any of them (``kani-adapt eval --out``, a recipe's eval stage, the runner
clearing a stage's outputs) first moves the whole folder aside, audio and all, to
``<folder>.kept-<when that eval was written>``: the ratings stay beside the clips they judged, so
``kani-adapt listen <that folder> --results`` reads them as before (the store knows its clips by
their sizes and times, which a rename keeps).

The move happens under the folder's lock (:func:`kani_adapt.core.locks.hold_output`), which a
serving listening test holds shared: an eval never moves a test away under its listeners.
"""
from __future__ import annotations

import time
from pathlib import Path

from kani_adapt.core.locks import hold_output

RATINGS = "listening.sqlite"  # kani_adapt.listen.store
RESULTS = "listening.json"  # kani_adapt.listen.results
HUMAN_INPUT = (RATINGS, f"{RATINGS}-wal", f"{RATINGS}-shm", f"{RATINGS}-journal", RESULTS)
NOTES = "notes"  # notes.md, notes.txt, NOTES...
WRITTEN = "eval.json"  # when it was written names the eval a kept folder belongs to
KEPT = ".kept-"


def human_input(folder: Path) -> list[str]:
    """The names of what a person put into ``folder`` (none: [])."""
    try:
        names = sorted(p.name for p in Path(folder).iterdir() if p.is_file())
    except OSError:
        return []
    return [n for n in names if n in HUMAN_INPUT or n.lower().startswith(NOTES)]


def set_aside(folder: Path, command: str = "kani-adapt eval") -> Path | None:
    """Move ``folder`` aside when it holds human input; returns where it went (None: it held
    none, nothing moved)."""
    folder = Path(folder)
    with hold_output(folder, command):
        if not human_input(folder):
            return None
        target = kept_name(folder)
        folder.rename(target)
        return target


def kept_name(folder: Path) -> Path:
    """``eval.kept-20260507-1412`` (the time its eval.json was written; the folder's own without
    one), with a number where that name is taken."""
    written = folder / WRITTEN
    when = (written if written.is_file() else folder).stat().st_mtime
    stem = f"{folder.name}{KEPT}{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}"
    target, n = folder.with_name(stem), 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{stem}-{n}")
    return target


def kept_folders(folder: Path) -> list[Path]:
    """The folders set aside from ``folder`` so far, oldest first."""
    folder = Path(folder)
    return sorted(p for p in folder.parent.glob(f"{folder.name}{KEPT}*") if p.is_dir())


def kept_line(folder: Path, moved: Path, detail: str = "") -> str:
    """The one line that says where the human input of ``folder`` went (``detail``: what the
    ratings hold, where the caller can tell)."""
    held = ", ".join(human_input(moved)) + (f"; {detail}" if detail else "")
    return (f"{Path(folder).name}/ held what people did ({held}): moved aside to {moved} "
            f"(`kani-adapt listen {moved} --results` reads its ratings)")
