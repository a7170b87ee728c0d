"""One writer per folder: ``flock`` locks that the kernel releases when a process dies.

Every command that writes a folder holds a lock in it, so a second run on the same folder is
refused at once with the holder's pid (it never waits), and the lock of a killed process is
simply taken over (the kernel dropped it; the pid left in the file is only a name):

- the data tools: ``<work>/.locks/work.lock``, exclusive for a stage run or ``prepare``.
  Shards of one stage (``--shard I/N``, N > 1) hold it shared, so they run side by side, plus
  an exclusive lock of their own shard: the same shard cannot run twice, and nothing else runs
  while shards do;
- generator and codec training: ``<run_dir>/.locks/run.lock`` (taken by the launching process,
  global rank 0, only: the other ranks of the same run are not a second writer);
- export and eval: a lock per output folder, ``<parent>/.locks/<name>.lock`` (the output
  folder itself is replaced whole, so its lock lives beside it); a listening test holds its
  eval folders' locks shared while it serves or writes its results.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from kani_adapt.core.errors import ConfigError, DataError

_held: dict[str, list] = {}  # path -> [fd, shared]: re-entrant inside one process
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK", "LOCAL_RANK")


def _let_go_in_forked_child() -> None:
    """A forked child (a data-loader worker, a pool process) closes its copies of the held
    descriptors: a lock belongs to the process that took it, so a killed run's workers, which
    linger a few seconds, do not keep its folder locked. The entries stay, so the child still
    counts the folders as held by its parent (re-entrant, never a second lock)."""
    for entry in _held.values():
        if entry[0] >= 0:
            try:
                os.close(entry[0])
            except OSError:
                pass
            entry[0] = -1


os.register_at_fork(after_in_child=_let_go_in_forked_child)


def lock_dir(work: Path) -> Path:
    return Path(work) / ".locks"


def holder(path: Path) -> str:
    """The pid written by the last process that took the lock ('?' when unknown)."""
    try:
        return Path(path).read_text().split("\n")[0].strip() or "?"
    except OSError:
        return "?"


def _holder_label(path: Path, fallback: str) -> str:
    try:
        return Path(path).read_text().split("\n")[1].strip() or fallback
    except (OSError, IndexError):
        return fallback


@contextmanager
def _flock(path: Path, shared: bool, what: str, label: str = "data-tools run",
           error: type = DataError):
    key = str(path)
    if key in _held:  # this process holds it already (prepare around its stages)
        if _held[key][1] and not shared:
            raise error(f"{what}: held shared by this process, cannot take it whole")
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise error(f"{what} is in use by another {_holder_label(path, label)} "
                    f"(pid {holder(path)}); wait for it to finish or stop it, then run again"
                    ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n{label}\n".encode(), 0)
    _held[key] = [fd, shared]
    try:
        yield
    finally:
        if _held.pop(key)[0] >= 0:  # -1: a forked child, whose copy is closed already
            os.close(fd)  # closing the last descriptor releases the lock


@contextmanager
def hold(work: Path, stage: str = "", shard: tuple[int, int] = (0, 1)):
    """Hold a data-tools work folder for one stage run (shared plus the shard's own lock when
    sharded)."""
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


def launching_rank() -> int:
    """This process's global rank as its launcher set it (torchrun, srun, Lightning's own
    subprocesses); 0 for a process started by hand."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and (name != "LOCAL_RANK" or int(value) > 0):
            return int(value)
    node = os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", ""))
    return 1 if node.isdigit() and int(node) > 0 else 0


@contextmanager
def hold_run(run_dir: Path, command: str):
    """Hold a run folder (training) for the whole run; only the launching rank takes it."""
    if launching_rank() != 0:
        yield
        return
    with _flock(lock_dir(run_dir) / "run.lock", shared=False, what=f"run folder {run_dir}",
                label=command, error=ConfigError):
        yield


@contextmanager
def hold_output(out: Path, command: str, shared: bool = False):
    """Hold an output folder (export, eval) that is written or replaced whole; ``shared``: only
    read it, beside other readers (a listening test over an eval folder), so no writer moves or
    replaces it meanwhile."""
    out = Path(out).absolute()
    with _flock(lock_dir(out.parent) / f"{out.name}.lock", shared=shared,
                what=f"output folder {out}", label=command, error=ConfigError):
        yield
