"""What training the predicted amount of data would cost, from the pilots' measured throughput.

Under the plan's rule a run makes the recipe's passes over its data, so its steps grow with its
hours: steps(h) = the recipe's steps x its GPUs x h / the training set's hours. The pilots
measured seconds per step (training only, pilots trained in one call: a resumed one's wall
time covers part of its steps), so a run on h hours takes seconds-per-step x steps(h), on one
device of the kind the pilots ran on (their ``machine``).
"""
from __future__ import annotations

import math

from kani_adapt.planning.analysis import FACTORS


def estimate(plan: dict) -> dict:
    timed = [p for p in plan["pilots"] if p.get("status") == "done" and not p.get("resumed")
             and p.get("steps")]
    if not timed:
        return {"reason": "no pilot trained in one call, so no throughput was measured"}
    seconds = sum(p["train_seconds"] for p in timed)
    steps = sum(p["steps"] for p in timed)
    per_step = seconds / steps
    rule, full = plan["rule"], plan["training_hours"]
    per_hour = rule["recipe_steps"] * rule["gpus"] / full  # steps per hour of data

    def device_hours(hours: float) -> float:
        return per_step * per_hour * hours / 3600 if math.isfinite(hours) else math.inf

    targets = {}
    for metric, m in plan["metrics"].items():
        t = m.get("target") or {}
        if t.get("state") == "needs":
            targets[metric] = {"hours": t["hours"], "device_hours": device_hours(t["hours"]),
                               "low": device_hours(t["low"]), "high": device_hours(t["high"])}
    return {"seconds_per_step": per_step, "steps_per_data_hour": per_hour,
            "machines": sorted({p.get("machine", "?") for p in timed}),
            "pilots_timed": len(timed),
            "pilot_train_seconds": sum(p.get("train_seconds", 0) for p in plan["pilots"]),
            "pilot_eval_seconds": sum(p.get("eval_seconds", 0) for p in plan["pilots"]),
            "whole_set": device_hours(full),
            "factors": {f"{f}x": device_hours(f * full) for f in FACTORS}, "targets": targets}
