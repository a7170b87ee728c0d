"""Speaker-clustered bootstrap intervals and paired comparisons.

Utterances of one speaker are not independent (a voice the model handles badly drags all of its
clips down), so the bootstrap resamples *speakers* with replacement and keeps all utterances of
each drawn speaker; the interval then reflects how the result would move with other speakers.
Means are utterance-weighted. NaN scores (a scorer that could not score a clip) are left out.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float  # 2.5th percentile of the bootstrap means
    high: float  # 97.5th percentile
    n: int  # utterances
    clusters: int  # speakers

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Paired:
    diff: Interval  # mean of (a - b) over matched utterances
    win_rate: Interval  # share of matched utterances where a is better (ties count half)


NAN_INTERVAL = Interval(float("nan"), float("nan"), float("nan"), 0, 0)
NOT_MEASURED = "not measured"


def no_interval(unit: str = "speaker") -> str:
    """What an interval over one cluster is called instead of its [x, x]."""
    return f"one {unit}: no interval"


def plain(interval: Interval, unit: str = "speaker") -> dict:
    """``interval`` as the reports keep it: where it says nothing, words instead of numbers.
    Nothing scored: mean, low and high are None, ``note`` "not measured"; one cluster (one
    speaker, or one utterance of a speaker): the mean stays, low and high are None and ``note``
    is "one speaker: no interval" (resampling one cluster only ever draws that cluster)."""
    out = interval.as_dict()
    if out["n"] == 0 or not np.isfinite(out["mean"]):
        return {**out, "mean": None, "low": None, "high": None, "note": NOT_MEASURED}
    if out["clusters"] < 2:
        return {**out, "low": None, "high": None, "note": no_interval(unit)}
    return out


def shown(i: dict, digits: int = 3) -> str:
    """"0.412 [0.380, 0.440]", "0.412 (one speaker: no interval)" or "not measured"."""
    mean = i.get("mean")
    if not i.get("n") or mean is None or not np.isfinite(mean):
        return NOT_MEASURED
    if i.get("note") or i.get("low") is None:
        return f"{mean:.{digits}f} ({i.get('note') or no_interval()})"
    return f"{mean:.{digits}f} [{i['low']:.{digits}f}, {i['high']:.{digits}f}]"


def _cluster_sums(values: np.ndarray, clusters: Sequence) -> tuple[np.ndarray, np.ndarray]:
    _, index = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    sums = np.bincount(index, weights=values)
    counts = np.bincount(index).astype(np.float64)
    return sums, counts


def clustered_bootstrap(values: Sequence[float], clusters: Sequence, resamples: int = DEFAULT_RESAMPLES,
                        seed: int = 0, level: float = 0.95) -> Interval:
    """Mean of ``values`` with a percentile interval from resampling whole clusters."""
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    values, clusters = values[keep], np.asarray(clusters, dtype=str)[keep]
    if values.size == 0:
        return NAN_INTERVAL
    sums, counts = _cluster_sums(values, clusters)
    k = len(sums)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(k, np.full(k, 1.0 / k), size=resamples).astype(np.float64)
    means = (weights @ sums) / np.maximum(weights @ counts, 1e-12)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(values.mean()), float(low), float(high), int(values.size), k)


def paired(a: Sequence[float], b: Sequence[float], clusters: Sequence, higher_is_better: bool = True,
           resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Paired:
    """Difference ``a - b`` of matched utterances and the rate at which ``a`` wins."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need matched utterances, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = a[keep] - b[keep]
    clusters = np.asarray(clusters, dtype=str)[keep]
    better = diff if higher_is_better else -diff
    wins = np.where(better > 0, 1.0, np.where(better < 0, 0.0, 0.5))
    return Paired(diff=clustered_bootstrap(diff, clusters, resamples, seed),
                  win_rate=clustered_bootstrap(wins, clusters, resamples, seed))


def excludes_zero(interval: Interval | dict) -> bool:
    """Whether the interval lies on one side of zero (never, where there is no interval)."""
    low, high = (interval.get("low"), interval.get("high")) if isinstance(interval, dict) \
        else (interval.low, interval.high)
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return False
    return low > 0 or high < 0


def clustered_ratio(numerator: Sequence[float], denominator: Sequence[float], clusters: Sequence,
                    resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = 0.95) -> Interval:
    """sum(numerator) / sum(denominator) (a corpus error rate: all edits over all reference
    units) with a percentile interval from resampling whole clusters; NaN rows are left out."""
    num, den = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    keep = ~(np.isnan(num) | np.isnan(den))
    num, den, clusters = num[keep], den[keep], np.asarray(clusters, dtype=str)[keep]
    if num.size == 0 or den.sum() <= 0:
        return NAN_INTERVAL
    sums, _ = _cluster_sums(num, clusters)
    units, _ = _cluster_sums(den, clusters)
    k = len(sums)
    weights = np.random.default_rng(seed).multinomial(k, np.full(k, 1.0 / k), size=resamples)
    ratios = (weights @ sums) / np.maximum(weights @ units, 1e-12)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return Interval(float(num.sum() / den.sum()), float(low), float(high), int(num.size), k)
