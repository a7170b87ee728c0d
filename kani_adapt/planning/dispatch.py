"""Where the pilots run: one after another in this process; one process per GPU when this
machine has several (each runs its share of the pilots in turn on its own GPU); or a Ray task
per pilot (``engine: ray``) on the Ray the data tools use (data_tools/engines/ray.py: a local
one on loopback with a private token, or a cluster that checks tokens), asking each task for a
GPU where the cluster has them. Nothing here schedules beyond handing pilots out: Ray places
its tasks, a process pool runs its queues.

Each pilot's record comes back whatever happened to it: a pilot that failed (or whose worker
died) is recorded with its reason, and the others go on.
"""
from __future__ import annotations

import logging
from typing import Callable

from kani_adapt.planning.pilots import Pilot, is_done, read_record, run_pilot

log = logging.getLogger("kani_adapt.progress")


def run_all(pilots: list[Pilot], engine: str, device: str, gpus: int, ray_cfg,
            say: Callable[[str], None] = print) -> dict[str, dict]:
    """Every pilot's record, by name (done ones are skipped)."""
    todo = [p for p in pilots if not is_done(p)]
    for p in pilots:
        if p.name not in {t.name for t in todo}:
            say(f"[{p.name}] done before with the same subset and settings: skipped")
    if todo and engine == "ray":
        _on_ray(todo, device, ray_cfg, say)
    elif todo:
        slots = gpu_slots(device, gpus)
        if len(slots) > 1:
            _per_gpu(todo, slots, say)
        else:
            for k, pilot in enumerate(todo, 1):
                say(f"[{pilot.name}] pilot {k}/{len(todo)}: {pilot.hours * 60:.1f} min, "
                    f"{pilot.voices} voices")
                _said(run_pilot(pilot), pilot, say)
    return {p.name: read_record(p) or _lost(p, "it left no record") for p in pilots}


def _said(record: dict, pilot: Pilot, say) -> None:
    if record.get("status") == "done":
        say(f"[{pilot.name}] done: {record.get('steps', 0)} steps in "
            f"{record.get('train_seconds', 0):.0f} s")
    else:
        say(f"[{pilot.name}] failed: {record.get('reason')}")


def _lost(pilot: Pilot, why: str) -> dict:
    return {"name": pilot.name, "key": pilot.key, "status": "failed", "reason": why}


def gpu_slots(device: str, gpus: int) -> list[str | None]:
    """The devices pilots run on at once: every GPU (or ``gpus`` of them) where the device is
    cuda or auto and there are several; else one slot, the pilot's own device."""
    if device not in ("auto", "cuda"):
        return [None]
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    count = min(count, gpus) if gpus else count
    return [f"cuda:{i}" for i in range(count)] if count > 1 else [None]


def shares(pilots: list[Pilot], slots: int) -> list[list[Pilot]]:
    """Pilots dealt to ``slots`` queues, the longest first to the least loaded queue."""
    queues: list[list[Pilot]] = [[] for _ in range(slots)]
    load = [0.0] * slots
    for pilot in sorted(pilots, key=lambda p: -p.hours):
        k = load.index(min(load))
        queues[k].append(pilot)
        load[k] += pilot.hours
    return [q for q in queues if q]


def run_queue(queue: list[Pilot], device: str | None) -> list[dict]:
    """A process's share of the pilots, in turn, on ``device``."""
    return [run_pilot(p, device) for p in queue]


def _per_gpu(todo: list[Pilot], slots: list[str], say) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    queues = shares(todo, len(slots))
    say(f"{len(todo)} pilots on {len(queues)} GPUs at once")
    with ProcessPoolExecutor(len(queues), mp_context=multiprocessing.get_context("spawn")) as pool:
        running = {pool.submit(run_queue, q, slot): q for q, slot in zip(queues, slots)}
        for future in as_completed(running):
            try:
                records = future.result()
            except Exception as err:  # noqa: BLE001 - the process died: its pilots say so
                for pilot in running[future]:
                    if not is_done(pilot):
                        say(f"[{pilot.name}] failed: its process died ({type(err).__name__})")
                continue
            for pilot, record in zip(running[future], records):
                _said(record, pilot, say)


def _pilot_task(pilot: Pilot, device: str) -> dict:
    """A Ray task: the pilot on the GPU Ray gave it (``cuda``), else on its own device."""
    import ray

    from data_tools.engines.ray_worker import worker_device

    gpu_ids = ray.get_gpu_ids()
    return run_pilot(pilot, worker_device(device, gpu_ids) if gpu_ids else None)


def _on_ray(todo: list[Pilot], device: str, cfg, say) -> None:
    from data_tools.engines import ray as on_ray

    with on_ray.session():
        ray = on_ray.connect(cfg)
        cluster = ray.cluster_resources()
        gpus = on_ray.gpus_for(device, cluster.get("GPU", 0), 1.0, "generator.trainer")
        task = ray.remote(_pilot_task).options(num_cpus=1, num_gpus=gpus, max_retries=0)
        most = cfg.workers or len(todo)
        say(f"{len(todo)} pilots on Ray ({int(cluster.get('CPU', 0))} CPUs, "
            f"{int(cluster.get('GPU', 0))} GPUs; {gpus:g} GPU per pilot)")
        queue, running = list(todo), {}
        while queue or running:
            while queue and len(running) < most:
                pilot = queue.pop(0)
                running[task.remote(pilot, device)] = pilot
            [ref], _ = ray.wait(list(running), num_returns=1)
            pilot = running.pop(ref)
            try:
                _said(ray.get(ref), pilot, say)
            except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.RayActorError) as err:
                from kani_adapt.core import atomic
                from kani_adapt.planning.pilots import RECORD

                record = _lost(pilot, f"its Ray worker failed ({type(err).__name__})")
                atomic.write_json(f"{pilot.folder}/{RECORD}", record)
                say(f"[{pilot.name}] failed: {record['reason']}")
