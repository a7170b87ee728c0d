"""The one runner every stage goes through: lock, resume, shard, progress, rejections, budget.

Work folder layout: ``<work>/<stage>/settings.json`` (what its results depend on),
``log*.jsonl`` (one line per finished unit, the result of each input by id; one log per shard for
model stages, one per block on Ray), ``manifest.jsonl`` (kept utterances, written once every
input has a result), ``rejected.jsonl``, ``throughput.json``; ``<work>/rejected.jsonl`` is the
union over stages in pipeline order. A stage whose settings changed starts over, so a resumed
run never mixes two configurations. Where the work runs is the engine's (data_tools/engines/:
this process by default, or Ray); the logs are the same, so either engine resumes the other.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from data_tools import engines, registry
from data_tools.config import check_folders
from data_tools.engines.work import Job
from data_tools.records import (Utterance, log_name, manifest_path, read_jsonl,
                                read_stage_results, stage_dir)
from data_tools.stages.kit import Context, Stage, device_resolved
from kani_adapt.core import atomic, locks
from kani_adapt.core.errors import ConfigError, DataError

LOG_FORMAT = 2  # part of every settings key: logs of an older format are redone, not misread


@dataclass
class Outcome:
    stage: str
    kept: list[Utterance] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    complete: bool = True  # False: other shards still owe ``left`` items
    left: int = 0
    out: Path | None = None  # what a final stage wrote (the dataset folder)


def shard_of(item_id: str, n: int) -> int:
    """Stable shard of an id (independent of input order and of Python's hash seed)."""
    return int(hashlib.sha1(item_id.encode()).hexdigest()[:8], 16) % n


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard {text!r}: I must be in 0..N-1")
    return i, n


def settings_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _check_settings(ctx: Context, stage: Stage, folder: Path) -> dict:
    """The stage's settings; its folder is cleared when they changed since it was written."""
    settings = {"format": LOG_FORMAT, **stage.settings(ctx)}
    key_file = folder / "settings.json"
    if key_file.exists() and json.loads(key_file.read_text())["key"] != settings_key(settings):
        if ctx.shard[1] > 1:  # other shards may be writing there
            raise DataError(f"{stage.name}: settings differ from the earlier run in {folder}; "
                            "run every shard with one config, or run without --shard to restart")
        shutil.rmtree(folder)  # earlier results would be wrong now
    return settings


def run_stage(stage: Stage | str, cfg, shard: tuple[int, int] = (0, 1), given: dict | None = None,
              inputs: list | None = None) -> Outcome:
    """Run one stage over ``inputs`` (default: what it reads in the work folder)."""
    stage = registry.get(stage) if isinstance(stage, str) else stage
    if shard[1] > 1 and not stage.model:
        raise ConfigError(f"{stage.name} runs whole; --shard is for the stages that run a model")
    if shard[1] > 1 and cfg.engine != "local":
        raise ConfigError(f"--shard with engine {cfg.engine}: it spreads {stage.name} over its "
                          "workers itself; run without --shard")
    check_folders(cfg)
    if cfg.engine == "local":  # elsewhere each worker resolves the device it was given
        cfg = device_resolved(cfg, stage)
    ctx = Context(cfg, Path(cfg.work), shard, dict(given or {}), pipeline=registry.pipeline())
    with locks.hold(ctx.work, stage.name, shard), engines.session(cfg):
        items = _unique(list(inputs) if inputs is not None else stage.items(ctx))
        if not stage.resumable:
            kept, rejected = stage.decide(ctx, items, {})
            return _finish(ctx, stage, kept, rejected, len(items))
        return _run_items(ctx, stage, items)


def _unique(items: list) -> list:
    """Items by id, first wins: an input listed twice is processed once."""
    seen: set[str] = set()
    return [it for it in items if not (it.id in seen or seen.add(it.id))]


def _run_items(ctx: Context, stage: Stage, items: list) -> Outcome:
    folder = stage_dir(ctx.work, stage.name)
    settings = _check_settings(ctx, stage, folder)
    results = read_stage_results(ctx.work, stage.name)
    i, n = ctx.shard
    todo = [it for it in items if it.id not in results and shard_of(it.id, n) == i]
    if todo:
        def begin() -> None:
            if not (folder / "settings.json").exists():
                atomic.write_text(folder / "settings.json", json.dumps(
                    {"key": settings_key(settings), "settings": settings}, indent=1, default=str))

        engines.run(Job(ctx, stage, todo, folder, log_name(stage, ctx.shard), begin))
        results = read_stage_results(ctx.work, stage.name)
    left = sum(1 for it in items if it.id not in results)
    if left:  # other shards still owe results: no manifest, so no later stage starts early
        manifest_path(ctx.work, stage.name).unlink(missing_ok=True)
        return Outcome(stage.name, complete=False, left=left)
    kept, rejected = stage.decide(ctx, items, results)
    return _finish(ctx, stage, kept, rejected, len(items))


def _finish(ctx: Context, stage: Stage, kept: list, rejected: list[dict], n_inputs: int) -> Outcome:
    """Write the stage's manifest and rejections; fail only past the rejected budget."""
    folder = stage_dir(ctx.work, stage.name)
    if stage.resumable:
        atomic.write_jsonl(folder / "manifest.jsonl", (u.to_dict() for u in kept))
    atomic.write_jsonl(folder / "rejected.jsonl", rejected)
    rebuild_rejected(ctx.work)
    budget = ctx.cfg.max_rejected_fraction
    whole = sum(1 for r in rejected if not r.get("part"))  # parts of a kept recording: not items
    if n_inputs and whole / n_inputs > budget:
        raise DataError(
            f"{stage.name}: rejected {whole} of {n_inputs} items, more than "
            f"max_rejected_fraction={budget}; reasons are in {Path(ctx.work) / 'rejected.jsonl'}")
    return Outcome(stage.name, kept, rejected, out=ctx.state.get("out"))


def rebuild_rejected(work: Path) -> None:
    rows = []
    for name in registry.names():
        rows.extend(read_jsonl(stage_dir(work, name) / "rejected.jsonl"))
    atomic.write_jsonl(Path(work) / "rejected.jsonl", rows)
