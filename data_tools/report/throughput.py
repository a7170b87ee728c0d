"""How fast each stage ran, per worker: items/s, audio hours per wall-clock hour, queue wait.

Every stage run that did work writes ``<work>/<stage>/throughput.json`` (its last run: engine,
wall clock, and the figures of each worker, summed over the units it did); the data report
shows them in one section. *Worker seconds per audio hour* (loading plus processing, over all
workers) is what a stage costs per hour of audio on this hardware: the figure to plan a larger
run with.
"""
from __future__ import annotations

import json
from pathlib import Path

from kani_adapt.core import atomic

FILE = "throughput.json"


def _rate(amount: float, seconds: float) -> float:
    return round(amount / seconds, 3) if seconds > 0 else 0.0


def per_worker(units: list) -> list[dict]:
    """Each worker's units summed: items, audio, busy, load and queue-wait figures."""
    by: dict[str, list] = {}
    for unit in units:
        by.setdefault(unit.worker, []).append(unit)
    out = []
    for worker, mine in sorted(by.items()):
        items, audio = sum(u.items for u in mine), sum(u.audio_s for u in mine)
        busy, waits = sum(u.busy_s for u in mine), [u.wait_s for u in mine]
        out.append({"worker": worker, "units": len(mine), "items": items,
                    "audio_h": round(audio / 3600, 6), "busy_s": round(busy, 3),
                    "open_s": round(sum(u.open_s for u in mine), 3),
                    "items_per_s": _rate(items, busy), "audio_h_per_h": _rate(audio, busy),
                    "wait_mean_s": round(sum(waits) / len(waits), 3),
                    "wait_max_s": round(max(waits), 3)})
    return out


def record(stage: str, engine: str, wall_s: float, units: list) -> dict:
    """One stage run: totals over the wall clock, and each worker's figures."""
    workers = per_worker(units)
    items = sum(w["items"] for w in workers)
    audio_s = sum(u.audio_s for u in units)
    spent = sum(w["busy_s"] + w["open_s"] for w in workers)
    return {"stage": stage, "engine": engine, "wall_s": round(wall_s, 3), "items": items,
            "audio_h": round(audio_s / 3600, 6), "workers": len(workers),
            "items_per_s": _rate(items, wall_s), "audio_h_per_h": _rate(audio_s, wall_s),
            "worker_s_per_audio_h": round(spent / (audio_s / 3600), 1) if audio_s else None,
            "per_worker": workers}


def write(folder: Path, rec: dict) -> None:
    atomic.write_text(Path(folder) / FILE, json.dumps(rec, indent=1))


def collect(work: Path, stages: list[str]) -> list[dict]:
    """The last recorded run of each of ``stages`` (in that order) that has one."""
    out = []
    for name in stages:
        path = Path(work) / name / FILE
        if path.exists():
            out.append(json.loads(path.read_text()))
    return out


def section(records: list[dict]) -> list[str]:
    """The report's Markdown section, blank line first (nothing without records)."""
    if not records:
        return []
    lines = ["", "## Throughput", "",
             "Last run of each stage that did work. Audio h per h: hours of audio per "
             "wall-clock hour (per worker: per hour of its own processing time); worker s per "
             "audio h: loading plus processing over all workers, the stage's cost per hour of "
             "audio on this hardware.", "",
             "| stage | engine | workers | items | audio h | wall s | items/s | audio h per h "
             "| worker s per audio h |", "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['stage']} | {r['engine']} | {r['workers']} | {r['items']} | "
                     f"{r['audio_h']:.4f} | {r['wall_s']:.1f} | {r['items_per_s']:.2f} | "
                     f"{r['audio_h_per_h']:.1f} | {r['worker_s_per_audio_h'] or '-'} |")
    lines += ["", "| stage | worker | units | items | items/s | audio h per h | load s "
              "| queue wait mean / max s |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        for w in r["per_worker"]:
            lines.append(f"| {r['stage']} | {w['worker']} | {w['units']} | {w['items']} | "
                         f"{w['items_per_s']:.2f} | {w['audio_h_per_h']:.1f} | "
                         f"{w['open_s']:.1f} | {w['wait_mean_s']:.2f} / {w['wait_max_s']:.2f} |")
    return lines
