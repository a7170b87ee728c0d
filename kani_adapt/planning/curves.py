"""Learning curves: a metric as a function of training hours, and its uncertainty.

The curve is a saturating power law, metric = a + b * (hours / H)^-c (H: the largest pilot's
hours, so that ``a + b`` is the figure there and ``a`` the figure with unlimited hours), fitted by
least squares (``scipy.optimize.curve_fit``, c bounded to [0.02, 4]). It has three parameters,
so it is fitted only to four points or more (one to spare); with three points, or when the
power law does not converge, the fallback is a log-linear line, metric = a + b * ln(hours / H),
which never flattens (its hours to a target are the optimistic end); with fewer than three
points there is no curve.

Uncertainty comes from the eval speakers: every pilot was scored on the same speakers, so one
draw of speakers with replacement (:func:`speaker_draws`) gives every pilot's figure in that
draw, and the curve is fitted again to each draw (with the point fit's form).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

POWER_LAW, LOG_LINEAR, NONE = "power law", "log-linear", "none"
C_BOUNDS = (0.02, 4.0)
LEVEL = 95  # percent, every interval


@dataclass(frozen=True)
class Curve:
    kind: str
    params: tuple[float, ...] = ()
    scale: float = 1.0  # the hours the curve is written against (the largest pilot's)
    reason: str = ""  # why this form (a fallback) or why there is none

    def at(self, hours) -> np.ndarray:
        x = np.asarray(hours, dtype=float) / self.scale
        if self.kind == POWER_LAW:
            a, b, c = self.params
            return a + b * x ** -c
        if self.kind == LOG_LINEAR:
            a, b = self.params
            return a + b * np.log(x)
        return np.full_like(x, np.nan)

    def improves(self, higher_is_better: bool) -> bool:
        """Whether the curve gets better with more hours."""
        if self.kind == NONE:
            return False
        slope = -self.params[1] if self.kind == POWER_LAW else self.params[1]
        return slope > 0 if higher_is_better else slope < 0

    def flattens_at(self) -> float:
        """The figure with unlimited hours (NaN where the form has none)."""
        return self.params[0] if self.kind == POWER_LAW else math.nan

    def hours_for(self, target: float, higher_is_better: bool) -> float:
        """The hours at which the curve reaches ``target``: inf when it never does (it flattens
        before, or does not get better with hours), NaN without a curve."""
        if self.kind == NONE:
            return math.nan
        if not self.improves(higher_is_better):
            return math.inf
        if self.kind == POWER_LAW:
            a, b, c = self.params
            ratio = (target - a) / b
            return self.scale * ratio ** (-1 / c) if ratio > 0 else math.inf
        a, b = self.params
        return self.scale * math.exp(min((target - a) / b, 700.0))


def fit(hours, values, kind: str | None = None, start: Curve | None = None) -> Curve:
    """The curve through (hours, values) (non-finite values left out); ``kind`` forces a form
    (the bootstrap refits with the point fit's, started from it: ``start``), None chooses by
    the number of points."""
    h, y = np.asarray(hours, float), np.asarray(values, float)
    keep = np.isfinite(y) & np.isfinite(h) & (h > 0)
    h, y = h[keep], y[keep]
    if kind == NONE or len(h) < 3 or len(np.unique(h)) < 3:
        return Curve(NONE, reason=f"not enough points ({len(np.unique(h))} measured; a curve "
                                  "needs 3)")
    scale = float(h.max())
    x = h / scale
    reason = ""
    if kind in (None, POWER_LAW):
        if len(h) >= 4:
            guess = start.params if start is not None and start.kind == POWER_LAW else None
            params = _power_law(x, y, guess)
            if params is not None:
                return Curve(POWER_LAW, params, scale)
            reason = "the power law did not converge"
        else:
            reason = "3 points: a three-parameter power law would pass through them exactly"
        if kind == POWER_LAW:
            return Curve(NONE, reason=reason)
    b, a = np.polyfit(np.log(x), y, 1)
    return Curve(LOG_LINEAR, (float(a), float(b)), scale,
                 reason or "log-linear asked for")


def _power_law(x: np.ndarray, y: np.ndarray, guess=None) -> tuple[float, float, float] | None:
    from scipy.optimize import OptimizeWarning, curve_fit

    order = np.argsort(x)
    first, last = y[order[0]], y[order[-1]]
    a0 = last - 0.25 * (first - last)
    b0 = last - a0 if last != a0 else 1e-3
    c0 = float(np.clip(math.log(5) / max(-math.log(x.min()), 1e-3), *C_BOUNDS))
    if guess is not None:  # a refit of a draw: from the point fit (the scale is the same)
        a0, b0, c0 = guess[0], guess[1], float(np.clip(guess[2], *C_BOUNDS))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", OptimizeWarning)
            params, _ = curve_fit(lambda x, a, b, c: a + b * x ** -c, x, y, p0=(a0, b0, c0),
                                  bounds=([-np.inf, -np.inf, C_BOUNDS[0]],
                                          [np.inf, np.inf, C_BOUNDS[1]]), maxfev=4000)
    except (RuntimeError, ValueError, OptimizeWarning):
        return None
    return tuple(float(p) for p in params) if np.all(np.isfinite(params)) else None


def speaker_draws(speakers: list[str], resamples: int, seed: int = 0) -> np.ndarray:
    """(resamples, speakers) counts: each row one draw of the speakers with replacement."""
    k = len(speakers)
    rng = np.random.default_rng(seed)
    return rng.multinomial(k, np.full(k, 1.0 / k), size=resamples).astype(float)


def figures(sums: dict[str, list[float]], speakers: list[str],
            draws: np.ndarray) -> tuple[float, np.ndarray]:
    """A pilot's figure over every speaker and in each draw (NaN where a draw holds none of
    the speakers it was scored on)."""
    num = np.array([sums.get(s, (0.0, 0.0))[0] for s in speakers])
    den = np.array([sums.get(s, (0.0, 0.0))[1] for s in speakers])
    point = num.sum() / den.sum() if den.sum() > 0 else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        drawn = (draws @ num) / (draws @ den)
    return float(point), np.where(draws @ den > 0, drawn, np.nan)


def interval(values) -> tuple[float, float]:
    """The central 95 % of ``values`` (inf kept: the ends are order statistics)."""
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    if not len(v):
        return math.nan, math.nan
    tail = (100 - LEVEL) / 2
    return (float(np.percentile(v, tail, method="lower")),
            float(np.percentile(v, 100 - tail, method="higher")))
