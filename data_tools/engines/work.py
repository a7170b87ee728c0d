"""What every engine does with a stage's work: a batch's outcomes become one log line, batches
are grouped into blocks under content-addressed names, and each unit of work leaves its figures.

A unit's figures (``Unit``) are what the throughput summary (data_tools/report/throughput.py) is built
from: which worker did it, how many items and seconds of audio, how long it took, how long it
waited for a worker, and how long the worker took to load the stage.
"""
from __future__ import annotations

import hashlib
import math
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from data_tools.records import LogEntry, StageLog, read_results, rejection
from data_tools.stages.kit import Context, Rejected, Stage

BLOCKS_PER_WORKER = 4  # enough blocks that a slow block does not leave the other workers idle


@dataclass
class Job:
    """The items a stage still owes, for an engine to run. ``begin`` marks the stage started
    (its settings.json); an engine calls it once the work is sure to start."""

    ctx: Context
    stage: Stage
    todo: list
    folder: Path  # the stage's folder in the work folder
    log: str  # the file the local engine appends to
    begin: Callable[[], None]


@dataclass
class Unit:
    """One finished unit of work (a batch locally, a block on Ray)."""

    worker: str  # host:pid of the process that did it
    items: int
    audio_s: float  # seconds of audio it read
    busy_s: float  # processing time
    wait_s: float = 0.0  # from ready to started (waiting for a free worker)
    open_s: float = 0.0  # loading the stage (its model) before this unit, when it had to

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def log_entry(stage: str, batch: list, outcomes: dict) -> LogEntry:
    """The log line of one batch: each item's output utterances or its rejection record."""
    results = {}
    for item in batch:
        outcome = outcomes[item.id]
        if isinstance(outcome, Rejected):
            record = rejection(item.id, stage, outcome.code, outcome.detail,
                               getattr(item, "source", ""))
            record |= owner_of(item)  # whose hours they were, also where nothing was read
            if getattr(outcome, "seconds", None) is not None:
                record["seconds"] = round(float(outcome.seconds), 3)
            results[item.id] = {"out": [], "rejected": record, "extra": {}}
        else:
            results[item.id] = {"out": [u.to_dict() for u in outcome.items], "rejected": None,
                                "extra": outcome.extra}
    return LogEntry(results)


def owner_of(item) -> dict:
    """{"tag", "speaker"} of an item (from its source and folder at ingest)."""
    return {"tag": (getattr(item, "tag", "") or "").lower(),
            "speaker": getattr(item, "speaker", "") or ""}


def audio_seconds(batch: list, outcomes: dict) -> float:
    """Audio a batch read: its items' durations; an item that has none yet (ingest's files)
    counts what it became."""
    total = 0.0
    for item in batch:
        seconds = float(getattr(item, "duration", 0.0) or 0.0)
        if not seconds and not isinstance(outcomes.get(item.id), Rejected):
            seconds = sum(u.duration for u in outcomes[item.id].items)
        total += seconds
    return total


def run_batches(stage: Stage, ctx: Context, batches: Iterable[list], log: StageLog,
                skip_logged: bool = False) -> list[Unit]:
    """Process ``batches`` in order, one log line each. With ``skip_logged`` a batch the log
    already holds (a block run again after its worker died) is not processed again."""
    logged = set(read_results([log.path])) if skip_logged else set()
    units, worker = [], worker_name()
    for batch in batches:
        if batch and batch[0].id in logged:  # a batch is logged whole or not at all
            continue
        start = time.monotonic()
        outcomes = stage.process(ctx, batch)
        log.append(log_entry(stage.name, batch, outcomes))
        units.append(Unit(worker, len(batch), audio_seconds(batch, outcomes),
                          time.monotonic() - start))
    return units


def plan_blocks(sizes: list[int], max_items: int, workers: int) -> list[list[int]]:
    """Consecutive batches (their sizes in items) grouped into blocks: about
    ``BLOCKS_PER_WORKER`` blocks per worker, none above ``max_items`` items unless one batch is
    (a batch is never split: it is the stage's unit of work)."""
    target = max(1, min(max_items, math.ceil(sum(sizes) / (BLOCKS_PER_WORKER * max(workers, 1)))))
    blocks: list[list[int]] = []
    count = 0
    for i, size in enumerate(sizes):
        if blocks and count and count + size <= target:
            blocks[-1].append(i)
            count += size
        else:
            blocks.append([i])
            count = size
    return blocks


def block_log(ids: list[str]) -> str:
    """A block's log file, named by its items: the same block always writes the same file, and
    two blocks never share one."""
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:16]
    return f"log-block-{digest}.jsonl"
