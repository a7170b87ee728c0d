"""The local engine (the default): every batch in this process, in order, into one log.

What the runner always did: open the stage (load its model), then append one line per batch to
``log.jsonl`` (``log-I-of-N.jsonl`` for a shard of a model stage), with a progress line.
"""
from __future__ import annotations

import time

from data_tools.engines.work import Job, Unit, run_batches
from data_tools.records import StageLog
from kani_adapt.core.console import progress


def run(job: Job) -> list[Unit]:
    start = time.monotonic()
    job.stage.open(job.ctx)
    opened = time.monotonic() - start
    job.begin()
    log = StageLog(job.folder / job.log)
    batches = progress(job.stage.batches(job.ctx, job.todo), job.stage.name, job.stage.unit,
                       size=len)
    units = run_batches(job.stage, job.ctx, batches, log)
    if units:
        units[0].open_s = opened
    return units
