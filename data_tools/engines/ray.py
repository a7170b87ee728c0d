"""The Ray engine: a stage's work as blocks on a Ray cluster, from the same stage definition.

The stage object is the local runner's (data_tools/registry.py). A worker that has opened it
plans the batches (``stage.batches``: by duration, as locally); consecutive batches form blocks
(``work.plan_blocks``), and each block runs where the stage's ``resources`` say:

- a task (ingest, segment, filter, outliers, align): the worker process opens the stage once
  for all the blocks it is given in this run;
- an actor of a pool (transcribe, embed, tokenize, filter with DNSMOS): each actor loads the
  model once, on a GPU when the stage's device asks for one (``ray.gpus_per_worker``).

Nothing lost, nothing twice: each block appends its batches to its own log, named by a hash of
its items (``log-block-<hash>.jsonl``) beside the local runner's logs. The runner reads them all,
so a rerun on either engine skips what any run finished: a killed driver loses only the blocks
in flight, and a block whose worker died is run again (``ray.max_retries`` times) without
redoing the batches it had logged. The driver holds the work folder's lock for its workers;
they write only under the stage's folder, which must be on a file system every node sees.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from pathlib import Path

from data_tools.engines import work
from data_tools.engines.ray_worker import Shipped, Worker, plan, run_block
from kani_adapt.core.console import progress
from kani_adapt.core.errors import ConfigError, DataError, KaniAdaptError

MB = 2 ** 20
START_ATTEMPTS = 3  # a local Ray that timed out starting (a busy machine) is started again
_session = {"depth": 0, "started": False}


@contextlib.contextmanager
def session():
    """Stops the Ray this session started (a local one, or a connection) when it ends."""
    _session["depth"] += 1
    try:
        yield
    finally:
        _session["depth"] -= 1
        if _session["depth"] == 0 and _session["started"]:
            import ray

            ray.shutdown()
            _session["started"] = False


def connect(cfg):
    """The ``ray`` module, connected: to the running session, to the cluster at
    ``cfg.address``, or to a local Ray started now (stopped when the session ends)."""
    from kani_adapt.core import console

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    import ray

    if ray.is_initialized():
        return ray
    quiet = {"include_dashboard": False, "log_to_driver": console.verbose(),
             "logging_level": "INFO" if console.verbose() else "ERROR"}
    try:
        if cfg.address:
            ray.init(address=cfg.address, **quiet)
        else:
            _start_local(ray, cfg, quiet)
    except (ConnectionError, TimeoutError, RuntimeError) as err:
        where = f"ray.address {cfg.address!r}" if cfg.address else "a local Ray"
        raise ConfigError(f"{where}: could not start or reach Ray ({err}); start a cluster "
                          "with `ray start --head`, or leave ray.address empty") from None
    _session["started"] = True
    return ray


def _start_local(ray, cfg, quiet: dict, attempts: int = START_ATTEMPTS) -> None:
    """A new local Ray of its own (``address="local"``, never a `ray start` one). Ray gives its
    node 30 s to come up, which a busy machine can miss: it is tried again from scratch."""
    for attempt in range(1, attempts + 1):
        try:
            with _driver_path():
                ray.init(address="local", num_cpus=cfg.num_cpus or None,
                         object_store_memory=cfg.object_store_mb * MB, **quiet)
            return
        except Exception as err:  # Ray raises a bare Exception when its node times out
            ray.shutdown()  # what this attempt started
            if "timed out during startup" not in str(err):
                raise
            if attempt == attempts:
                raise TimeoutError(f"its node did not come up in 30 s, {attempts} times; "
                                   "the machine is too busy") from None


@contextlib.contextmanager
def _driver_path():
    """A local Ray's workers import what this process imports (a source checkout, plugins)."""
    before = os.environ.get("PYTHONPATH")
    paths = [p for p in [*(before or "").split(os.pathsep), *sys.path] if p and Path(p).is_dir()]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def gpus_for(device: str, cluster_gpus: float, per_worker: float, stage: str) -> float:
    """GPUs one worker of a stage asks for: none on cpu/mps, ``per_worker`` on cuda, and on
    auto where the cluster has GPUs."""
    if device in ("cpu", "mps"):
        return 0.0
    if device == "auto":
        return per_worker if cluster_gpus > 0 else 0.0
    if cluster_gpus <= 0:
        raise ConfigError(f"{stage}: device {device} asks for a GPU, but the Ray cluster has "
                          f"none; set {stage}.device to auto or cpu")
    return per_worker


def worker_count(asked: int, cpus: float, gpus: float, cluster: dict) -> int:
    """Workers of one stage: as many as the cluster holds at once, at most ``asked`` (0: no
    limit)."""
    fit = cluster.get("GPU", 0) / gpus if gpus else cluster.get("CPU", 1) / cpus
    fit = max(1, int(fit + 1e-9))
    return min(asked, fit) if asked else fit


def run(job: work.Job) -> list[work.Unit]:
    """Run a job's items on Ray; each block's figures as a unit."""
    cfg = job.ctx.cfg.ray
    ray = connect(cfg)
    stage, res = job.stage, job.stage.resources(job.ctx.cfg)
    cluster = ray.cluster_resources()
    gpus = gpus_for(res.device, cluster.get("GPU", 0), cfg.gpus_per_worker, stage.name)
    most = worker_count(cfg.workers, res.cpus, gpus, cluster)
    job.begin()  # before any worker looks: settings.json is how it knows it sees the folder
    from kani_adapt.codec import registry as codecs

    shipped = ray.put(Shipped(f"{stage.name}-{os.getpid()}-{time.time_ns()}", stage,
                              dataclasses.replace(job.ctx, state={}), codecs.CODEC_FACTORY))
    options = {"num_cpus": res.cpus, "num_gpus": gpus}
    workers = (_Pool if res.pool else _Tasks)(ray, shipped, options, cfg.max_retries)
    try:
        by_id = {item.id: item for item in job.todo}
        batches = [[by_id[i] for i in ids] for ids in _get(ray, workers.plan(job.todo), stage)]
        blocks = [[batches[i] for i in group] for group in
                  work.plan_blocks([len(b) for b in batches], cfg.block_items, most)]
        slots = min(most, len(blocks))
        workers.grow(slots)
        units: list[work.Unit] = []
        finished = _schedule(ray, workers, blocks, slots, stage, cfg.max_retries, units)
        for _ in progress(finished, stage.name, stage.unit, total=len(job.todo)):
            pass
        return units
    finally:
        workers.close()


def _schedule(ray, workers, blocks: list, slots: int, stage, retries: int, units: list):
    """Blocks on at most ``slots`` workers at once; yields once per item of each finished block
    (for the progress line) and collects the blocks' figures in ``units``."""
    ready = time.time()
    queue, free, pending = list(blocks), list(range(slots)), {}
    try:
        while queue or pending:
            while queue and free:
                slot, block = free.pop(0), queue.pop(0)
                name = work.block_log([item.id for batch in block for item in batch])
                pending[workers.submit(slot, block, name, ready)] = (slot, block, name)
            [ref], _ = ray.wait(list(pending), num_returns=1)
            slot, block, name = pending.pop(ref)
            units.append(work.Unit(**_get(ray, ref, stage, name, retries)))
            free.append(slot)
            yield from range(sum(len(b) for b in block))
    except BaseException:  # a failed block or a signal: the blocks in flight are given up
        _drop(ray, list(pending), workers)
        raise


def _drop(ray, refs: list, workers) -> None:
    """Stop the blocks still in flight; what they had logged stays, their errors are read
    here so that Ray does not report them again as unhandled."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)
    workers.close()
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.get(ref, timeout=10)


def _get(ray, ref, stage, block: str = "", retries: int = 0):
    """A worker's result; a project error raised there is raised here as itself (one line)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, (KaniAdaptError, OSError)):
            raise err.cause from None
        raise
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError) as err:
        what = f"block {block}" if block else "planning"
        raise DataError(f"{stage.name}: a Ray worker died on {what} {retries + 1} times "
                        f"({type(err).__name__}); finished blocks are kept: run again to "
                        "continue (--verbose shows the workers' output)") from None


class _Tasks:
    """CPU stages: a task per block; a worker process opens the stage once per run."""

    def __init__(self, ray, shipped, options: dict, retries: int):
        self.shipped = shipped
        self.planner = ray.remote(plan).options(**options, max_retries=retries)
        self.block = ray.remote(run_block).options(**options, max_retries=retries,
                                                   retry_exceptions=False)

    def plan(self, todo: list):
        return self.planner.remote(self.shipped, todo)

    def grow(self, n: int) -> None:
        pass

    def submit(self, slot: int, block: list, name: str, ready: float):
        return self.block.remote(self.shipped, block, name, ready)

    def close(self) -> None:
        pass


class _Pool:
    """Model stages: actors that load the model once each (again after a restart)."""

    def __init__(self, ray, shipped, options: dict, retries: int):
        self.ray, self.shipped = ray, shipped
        self.cls = ray.remote(Worker).options(**options, max_restarts=retries,
                                              max_task_retries=retries)
        self.actors = [self.cls.remote()]

    def plan(self, todo: list):
        return self.actors[0].plan.remote(self.shipped, todo)

    def grow(self, n: int) -> None:
        self.actors += [self.cls.remote() for _ in range(n - len(self.actors))]

    def submit(self, slot: int, block: list, name: str, ready: float):
        return self.actors[slot].run_block.remote(self.shipped, block, name, ready)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
