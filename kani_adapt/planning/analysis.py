"""Per metric: the pilots' figures with intervals, the learning curve and its band, predictions
at 2x, 4x and 10x the data, the hours to a target, the held-out check, the voices axis, and
plain flags where the pilots cannot carry a curve (too noisy, or none moved from the base).

Every interval comes from the same draws of eval speakers (``curves.speaker_draws``), so the
pilots, the base and their differences are compared speaker for speaker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kani_adapt.planning import curves

FACTORS = (2, 4, 10)
RECORDINGS_FACTOR, BASE_FACTOR = 1.2, 0.5  # the default targets


@dataclass
class Measured:
    """One pilot's figures of one metric: over every eval speaker, and in each draw."""

    name: str
    hours: float
    voices: int
    point: float
    drawn: np.ndarray

    def summary(self) -> dict:
        low, high = curves.interval(self.drawn)
        return {"pilot": self.name, "hours": self.hours, "voices": self.voices,
                "value": self.point, "low": low, "high": high}


@dataclass
class Inputs:
    metric: str
    higher_is_better: bool
    hours: list[Measured]  # the hours axis, rising
    voices: list[Measured]  # the voices axis, then the hours pilot they are compared with
    base: Measured | None
    recordings: Measured | None
    target: tuple[float, str] | None  # value, how it was set
    resamples_seed: int = 0
    flags: list[str] = field(default_factory=list)


def default_target(metric: str, base: float | None, recordings: float | None
                   ) -> tuple[float, str] | None:
    """cer and corpus_cer within 1.2x of the recordings', catastrophic at half the base's."""
    if metric in ("cer", "corpus_cer") and recordings is not None and math.isfinite(recordings):
        return RECORDINGS_FACTOR * recordings, f"{RECORDINGS_FACTOR:g}x the recordings' {recordings:.4g}"
    if metric == "catastrophic" and base is not None and math.isfinite(base):
        return BASE_FACTOR * base, f"half the base's {base:.4g}"
    return None


def analyse(x: Inputs) -> dict:
    hours = np.array([m.hours for m in x.hours])
    points = np.array([m.point for m in x.hours])
    drawn = np.stack([m.drawn for m in x.hours], 1) if x.hours else np.zeros((0, 0))
    out = {"metric": x.metric, "higher_is_better": x.higher_is_better,
           "points": [m.summary() for m in x.hours], "flags": list(x.flags),
           "base": x.base.summary() if x.base else None,
           "recordings": x.recordings.summary() if x.recordings else None}
    curve = curves.fit(hours, points)
    noisy = _noise(points, out["points"])
    if noisy and curve.kind != curves.NONE:
        curve = curves.Curve(curves.NONE, reason=noisy)
    moved = _moved(x)
    if moved:
        out["flags"].append(moved)
    if curve.kind == curves.POWER_LAW and curve.params[2] <= curves.C_BOUNDS[0] * 1.01:
        out["flags"].append(
            f"{x.metric}: the power law's exponent sits at its bound ({curves.C_BOUNDS[0]}): the "
            "pilots show no flattening yet (the curve is a log-linear line in effect), so where "
            "it flattens is not known and long extrapolations are optimistic")
    out["curve"] = {"kind": curve.kind, "params": list(curve.params), "scale": curve.scale,
                    "reason": curve.reason}
    fits = ([curves.fit(hours, row, curve.kind, curve) for row in drawn]
            if curve.kind != curves.NONE else [])
    fits = [f for f in fits if f.kind != curves.NONE]
    out["draws_fitted"] = f"{len(fits)} of {len(drawn)}"
    full = float(hours.max()) if len(hours) else math.nan
    out["band"] = _band(curve, fits, hours, full)
    out["predictions"] = [_predict(curve, fits, f * full, f) for f in FACTORS]
    out["target"] = _target(x, curve, fits, x.hours[-1] if x.hours else None)
    out["check"] = _held_out_check(x, hours, points, drawn)
    out["voices"] = _voices(x)
    return out


def _noise(points: np.ndarray, summaries: list[dict]) -> str:
    """Why the pilots cannot carry a curve ("" when they can): their figures move less than
    their own intervals are wide."""
    finite = points[np.isfinite(points)]
    widths = [s["high"] - s["low"] for s in summaries if math.isfinite(s["high"] - s["low"])]
    if len(finite) < 2 or not widths:
        return ""
    spread, width = float(finite.max() - finite.min()), float(np.median(widths))
    if spread < width:
        return (f"too noisy to fit: the pilots' figures move by {spread:.4g}, less than their "
                f"own 95 % intervals are wide (median {width:.4g}); more eval speakers or "
                "longer pilots would tell")
    return ""


def _moved(x: Inputs) -> str:
    """A flag when no hours pilot differs from the base (paired over the same draws)."""
    if x.base is None or not x.hours:
        return ""
    for m in x.hours:
        low, high = curves.interval(m.drawn - x.base.drawn)
        if low > 0 or high < 0:
            return ""
    return (f"no pilot moved {x.metric} from the base's {x.base.point:.4g} (every 95 % interval "
            "of the difference holds 0): the pilots are too short, or the metric does not "
            "respond to this data")


def _band(curve: curves.Curve, fits: list, hours: np.ndarray, full: float) -> dict:
    if curve.kind == curves.NONE:
        return {}
    grid = np.geomspace(hours.min(), full * max(FACTORS), 60)
    every = np.array([f.at(grid) for f in fits]) if fits else np.full((1, len(grid)), np.nan)
    ends = [curves.interval(every[:, i]) for i in range(len(grid))]
    return {"hours": grid.tolist(), "fit": curve.at(grid).tolist(),
            "low": [e[0] for e in ends], "high": [e[1] for e in ends]}


def _predict(curve: curves.Curve, fits: list, hours: float, factor: int) -> dict:
    low, high = curves.interval([float(f.at(hours)) for f in fits])
    return {"factor": factor, "hours": hours, "value": float(curve.at(hours)), "low": low,
            "high": high}


def _meets(value: float, target: float, higher_is_better: bool) -> bool:
    return value >= target if higher_is_better else value <= target


def _target(x: Inputs, curve: curves.Curve, fits: list, largest: Measured | None) -> dict | None:
    if x.target is None:
        return None
    value, rule = x.target
    out = {"value": value, "rule": rule}
    if largest is not None and _meets(largest.point, value, x.higher_is_better):
        return {**out, "state": "met", "hours": largest.hours}
    if curve.kind == curves.NONE:
        return {**out, "state": "unknown", "reason": curve.reason}
    need = curve.hours_for(value, x.higher_is_better)
    drawn = np.array([f.hours_for(value, x.higher_is_better) for f in fits])
    low, high = curves.interval(drawn)
    share = float(np.mean(np.isinf(drawn))) if len(drawn) else math.nan
    state = "unreachable" if math.isinf(need) else "needs"
    return {**out, "state": state, "hours": need, "low": low, "high": high,
            "unreachable_share": share, "flattens_at": curve.flattens_at()}


def _held_out_check(x: Inputs, hours, points, drawn) -> dict | None:
    """Fit on every hours pilot but the largest, predict the largest; the error, whether the
    measured figure lies in the prediction's interval, and a flat guess's error beside it."""
    if len(hours) < 4:
        return None
    curve = curves.fit(hours[:-1], points[:-1])
    if curve.kind == curves.NONE:
        return {"kind": curve.kind, "reason": curve.reason}
    fits = [curves.fit(hours[:-1], row[:-1], curve.kind, curve) for row in drawn]
    predicted = float(curve.at(hours[-1]))
    low, high = curves.interval([float(f.at(hours[-1])) for f in fits if f.kind != curves.NONE])
    measured = float(points[-1])
    return {"kind": curve.kind, "pilot": x.hours[-1].name, "hours": float(hours[-1]),
            "from_hours": float(hours[-2]), "measured": measured, "predicted": predicted,
            "low": low, "high": high, "error": predicted - measured,
            "relative_error": abs(predicted - measured) / abs(measured) if measured else math.nan,
            "inside": bool(low <= measured <= high),
            "flat_error": float(points[-2]) - measured}


def _voices(x: Inputs) -> dict | None:
    """The voices axis: each count's figure, and the change from the fewest voices to all of
    them at equal hours (paired over the draws)."""
    if len(x.voices) < 2:
        return None
    fewest, most = x.voices[0], x.voices[-1]
    diff = most.drawn - fewest.drawn
    low, high = curves.interval(diff)
    change = most.point - fewest.point
    if low > 0 or high < 0:
        better = (change > 0) == x.higher_is_better
        verdict = "better with more voices" if better else "worse with more voices"
    else:
        verdict = "no clear change with more voices (the 95 % interval holds 0)"
    return {"points": [m.summary() for m in x.voices],
            "diff": {"from": fewest.voices, "to": most.voices, "value": change, "low": low,
                     "high": high}, "verdict": verdict}
