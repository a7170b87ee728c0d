"""One writer per work folder: ``flock`` locks that the kernel releases when a process dies.

A stage run (or ``prepare``) holds ``<work>/.locks/work.lock`` exclusively. Shards of one stage
(``--shard I/N`` with N > 1) hold it shared, so they run side by side, plus an exclusive lock of
their own shard: the same shard cannot run twice, and nothing else runs while shards do. A
second process is refused at once with the holder's pid; it never waits.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from kani_adapt.errors import DataError

_held: dict[str, list] = {}  # path -> [fd, shared]: re-entrant inside one process


def lock_dir(work: Path) -> Path:
    return Path(work) / ".locks"


def holder(path: Path) -> str:
    """The pid written by the last process that took the lock ('?' when unknown)."""
    try:
        return Path(path).read_text().strip() or "?"
    except OSError:
        return "?"


@contextmanager
def _flock(path: Path, shared: bool, what: str):
    key = str(path)
    if key in _held:  # this process holds it already (prepare around its stages)
        if _held[key][1] and not shared:
            raise DataError(f"{what}: held shared by this process, cannot take it whole")
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DataError(f"{what} is in use by another data-tools run (pid {holder(path)}); "
                        "wait for it to finish or stop it, then run again") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = [fd, shared]
    try:
        yield
    finally:
        del _held[key]
        os.close(fd)  # closing the last descriptor releases the lock


@contextmanager
def hold(work: Path, stage: str = "", shard: tuple[int, int] = (0, 1)):
    """Hold the work folder for one stage run (shared plus the shard's own lock when sharded)."""
    folder = lock_dir(work)
    sharded = shard[1] > 1
    with _flock(folder / "work.lock", shared=sharded, what=f"work folder {work}"):
        if not sharded:
            yield
            return
        name = f"{stage}-{shard[0]:05d}-of-{shard[1]:05d}.lock"
        with _flock(folder / name, shared=False,
                    what=f"{stage} shard {shard[0]}/{shard[1]} in {work}"):
            yield
