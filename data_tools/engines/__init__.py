"""Where a data stage's work runs: in this process (``local``, the default) or on Ray. May
import the stage kit, the records and the report wing (never the registry or the runner, which
imports the engines).

An engine is handed the items a stage still owes (``work.Job``) and leaves one log record per
item in the stage's folder; everything else (the lock, settings, resume, ``decide``, manifest,
rejections, the budget) is the runner's, the same for both. The stages themselves are written
once (data_tools/stages/kit.py): their ``batches`` and ``process`` run wherever the engine puts
them, and ``resources`` says what a worker of theirs needs on a cluster. Each run's figures per
worker land in ``<stage>/throughput.json`` for the data report. Ray is imported only when a
stage runs on it.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from data_tools.report import throughput
from data_tools.engines.work import Job

ENGINES = ("local", "ray")


def run(job: Job) -> None:
    """Run ``job`` on the config's engine and record its throughput."""
    engine = job.ctx.cfg.engine
    start = time.monotonic()
    if engine == "ray":
        from data_tools.engines import ray as on_ray

        units = on_ray.run(job)
    else:
        from data_tools.engines import local

        units = local.run(job)
    throughput.write(job.folder, throughput.record(job.stage.name, engine,
                                                   time.monotonic() - start, units))


@contextmanager
def session(cfg):
    """One engine session around several stages (``prepare``): a local Ray is started once,
    when a stage first needs it, and stopped at the end."""
    if cfg.engine != "ray":
        yield
        return
    from data_tools.engines import ray as on_ray

    with on_ray.session():
        yield
