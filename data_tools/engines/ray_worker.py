"""The Ray engine's worker side: open a stage once per process (or actor), plan its batches,
run a block of them into the block's own log, and say what it took (data_tools/engines/ray.py
is the driver side)."""
from __future__ import annotations

import dataclasses
import time

from data_tools.engines import work
from data_tools.records import StageLog
from kani_adapt.core.errors import DataError

_opened: dict = {}  # the stage this process opened for the current run, by run key


def worker_device(device: str, gpu_ids: list) -> str:
    """The torch device inside a worker: the GPU Ray gave it (Ray makes it the only one the
    process sees: ``cuda``), else ``auto`` resolved there."""
    if gpu_ids and (device == "auto" or device.startswith("cuda")):
        return "cuda"
    if device == "auto":
        from kani_adapt.core.devices import resolve

        return resolve("auto")
    return device


@dataclasses.dataclass
class Shipped:
    """What a worker needs to open a stage: the stage object, its context, and the driver's
    codec factory (a codec registered in the driver is the one the workers load)."""

    key: str  # one run of one stage
    stage: object
    ctx: object
    codec_factory: object


def _open(shipped: Shipped) -> list:
    """[stage, ctx, seconds opening took not yet reported] in this worker process, which opens
    the stage once per run."""
    if shipped.key in _opened:
        return _opened[shipped.key]
    start = time.monotonic()
    from kani_adapt.codec import registry as codecs
    from data_tools.stages.kit import device_resolved
    from data_tools.records import stage_dir
    import ray

    codecs.CODEC_FACTORY = shipped.codec_factory
    stage, ctx = shipped.stage, shipped.ctx
    gpu_ids = ray.get_gpu_ids()
    ctx = dataclasses.replace(ctx, cfg=device_resolved(
        ctx.cfg, stage, lambda d: worker_device(d, gpu_ids)), state={})
    if not (stage_dir(ctx.work, stage.name) / "settings.json").exists():
        raise DataError(f"{stage.name}: the worker on {work.worker_name()} does not see the work "
                        f"folder {ctx.work}; put it on a file system every Ray node mounts at "
                        "the same path")
    stage.open(ctx)
    _opened.clear()  # one run's stage at a time per process
    _opened[shipped.key] = [stage, ctx, time.monotonic() - start]
    return _opened[shipped.key]


def plan(shipped: Shipped, todo: list) -> list[list[str]]:
    """The stage's batches (ids), planned by a worker that opened it."""
    stage, ctx, _ = _open(shipped)  # the time it took is reported with the first block
    return [[item.id for item in batch] for batch in stage.batches(ctx, todo)]


def run_block(shipped: Shipped, batches: list[list], log_name: str, ready: float) -> dict:
    """One block in a worker: its batches into its own log (those logged before skipped)."""
    started = time.time()
    opened = _open(shipped)
    stage, ctx, open_s = opened
    opened[2] = 0.0
    from data_tools.records import stage_dir

    log = StageLog(stage_dir(ctx.work, stage.name) / log_name)
    units = work.run_batches(stage, ctx, batches, log, skip_logged=True)
    unit = work.Unit(work.worker_name(), sum(u.items for u in units),
                     sum(u.audio_s for u in units), sum(u.busy_s for u in units),
                     wait_s=max(0.0, started - ready), open_s=open_s)
    return unit.to_dict()


class Worker:
    """An actor of a model stage's pool: a process that keeps the stage open (its model
    loaded) from its first call on; after a restart, the first call opens it again. Every call
    names the stage it is for, so the actor needs no state of its own to be restarted with."""

    def plan(self, shipped: Shipped, todo: list) -> list[list[str]]:
        return plan(shipped, todo)

    def run_block(self, shipped: Shipped, batches: list[list], log_name: str,
                  ready: float) -> dict:
        return run_block(shipped, batches, log_name, ready)
