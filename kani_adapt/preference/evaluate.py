"""The eval stage: each round's policy on the held-out prompts in the held-out voices, failure
rates by prompt kind and by length bucket (runaway, too short, empty, WER above the gate, any),
and the round to ship: the last whose rates regress on no kind beyond ``tolerance`` against the
previous round and the supervised model (round 0)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kani_adapt.core import atomic
from kani_adapt.preference import reward as rewards
from kani_adapt.preference.config import PreferConfig
from kani_adapt.preference.stages import sampled, scored

KINDS_OF_FAILURE = ("runaway", "short", "empty", "wer", "any")


def classify(failed: list[str]) -> dict[str, bool]:
    return {"runaway": "long" in failed or "truncated" in failed, "short": "short" in failed,
            "empty": "empty" in failed, "wer": "wer" in failed, "any": bool(failed)}


def rates(rollouts, failed: list[list[str]], key) -> dict[str, dict[str, float]]:
    out: dict[str, dict] = {}
    for name in sorted({key(r) for r in rollouts}):
        mine = [classify(f) for r, f in zip(rollouts, failed) if key(r) == name]
        out[name] = {k: float(np.mean([m[k] for m in mine])) for k in KINDS_OF_FAILURE}
        out[name]["n"] = len(mine)
    return out


def stage(folder: Path, generator, prompts, pool, models, transcriber, cfg: PreferConfig,
          voices=None) -> dict:
    path = folder / "eval.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    rolled = sampled(folder, generator, prompts, "eval", pool, models, cfg, seed=0)
    _, values, failed = scored(folder, rolled, transcriber, cfg, voices)
    result = {"by_kind": rates(rolled, failed, lambda r: r.prompt.kind),
              "by_length": rates(rolled, failed, lambda r: r.prompt.bucket),
              "all": rates(rolled, failed, lambda r: "all")["all"],
              "mean_reward": float(np.mean(values)) if values else float("nan")}
    atomic.write_json(path, result)
    return result


def regressions(now: dict, before: dict, tolerance: float) -> list[str]:
    """Kinds whose failure rate rose more than ``tolerance``."""
    return [kind for kind, figures in now["by_kind"].items()
            if kind in before["by_kind"] and figures["any"] > before["by_kind"][kind]["any"] + tolerance]


def summarise(evals: list[dict], tolerance: float) -> dict:
    ship, rows = 0, []
    for number, result in enumerate(evals):
        worse = [] if number == 0 else sorted(set(regressions(result, evals[number - 1], tolerance))
                                              | set(regressions(result, evals[0], tolerance)))
        rows.append({"round": number, "runaway": result["all"]["runaway"],
                     "short": result["all"]["short"], "any": result["all"]["any"],
                     "regressed": worse})
        if number and not worse and ship == number - 1:
            ship = number
    return {"rounds": rows, "ship": ship, "tolerance": tolerance,
            "gates": ["wer", "empty", "truncated", "short", "long"], "reward": rewards.__doc__.split("\n\n")[1]}
