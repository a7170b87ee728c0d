"""Speaker consistency from speaker embeddings: clips far from their speaker's centroid, and the
places in a long recording where the voice changes.

Both decisions are pure functions of embeddings (any embedder: rows of an array, compared by
cosine). Thresholds are robust statistics of the speaker's (or recording's) own similarities, so
they adapt to how tightly a given embedder clusters one voice; an absolute floor catches a
speaker whose clips are all over the place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass
class ConsistencyConfig:
    # A clip is an outlier below median - k * MAD (scaled to sigma) of its speaker's cosines to
    # the centroid; 3.5 is the usual cut-off for robust ("modified") z-scores.
    outlier_mads: float = 3.5
    # Smallest spread assumed: near-identical clips (MAD ~ 0) must not flag tiny differences.
    min_spread: float = 0.03
    # Absolute floor on cosine to the centroid (-1 = off): depends on the embedder, so off by
    # default; for ECAPA-like embedders 0.3-0.5 separates other voices.
    min_cosine: float = -1.0
    min_clips: int = 5  # fewer clips than this: only the floor applies (no statistics)
    # Voice changes: a window is "another voice" when its cosine to the running centroid falls
    # below the recording's typical adjacent-window cosine by max(change_mads * spread, min_drop).
    change_mads: float = 5.0
    min_drop: float = 0.25
    confirm_windows: int = 2  # this many following windows must also be far (one noisy window
    #                            - a laugh, a cough - is not a new speaker)


@dataclass
class Outlier:
    index: int
    speaker: str
    cosine: float  # to the speaker's centroid
    threshold: float
    code: str = "speaker_outlier"
    detail: str = ""


@dataclass
class ChangePoint:
    window: int  # first window of the new voice
    time_s: float  # best guess of the change: between this window's start and the last
    lo_s: float  # old-voice window's end
    hi_s: float
    cosine: float  # of that window to the old voice's centroid
    threshold: float


def rate_outliers(rates: dict[str, tuple[str, float]], mads: float,
                  min_count: int = 5) -> dict[str, tuple[float, float]]:
    """{id: (value, speaker median)} for items whose value (a speaking rate) lies more than
    ``mads`` robust deviations (MAD x 1.4826) from their speaker's median; speakers with fewer
    than ``min_count`` items are not judged. ``rates`` maps id -> (speaker, value)."""
    per_speaker: dict[str, list[tuple[str, float]]] = {}
    for item_id, (speaker, value) in rates.items():
        per_speaker.setdefault(speaker, []).append((item_id, value))
    out = {}
    for items in per_speaker.values():
        if len(items) < min_count:
            continue
        values = np.array([v for _, v in items])
        median = float(np.median(values))
        mad = MAD_TO_SIGMA * float(np.median(np.abs(values - median))) or 1e-6
        out.update({i: (v, median) for i, v in items if abs(v - median) / mad > mads})
    return out


def unit_rows(embeddings) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a (clips, dims) array, got shape {x.shape}")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def robust_centroid(unit: np.ndarray) -> np.ndarray:
    """Mean direction of the clips closest to the plain mean: outliers barely move it."""
    mean = unit.mean(axis=0)
    sims = unit @ mean
    core = unit[sims >= np.median(sims)]
    centroid = core.mean(axis=0)
    return centroid / max(np.linalg.norm(centroid), 1e-12)


def _spread(values: np.ndarray, floor: float) -> tuple[float, float]:
    median = float(np.median(values))
    return median, max(float(np.median(np.abs(values - median))) * MAD_TO_SIGMA, floor)


def speaker_outliers(embeddings, speakers: Sequence[str],
                     cfg: ConsistencyConfig = ConsistencyConfig()) -> list[Outlier]:
    """Clips far from their speaker's centroid (``embeddings[i]`` belongs to ``speakers[i]``)."""
    unit = unit_rows(embeddings)
    if len(speakers) != len(unit):
        raise ValueError(f"{len(unit)} embeddings but {len(speakers)} speaker labels")
    labels = np.asarray(speakers, dtype=object)
    out = []
    for speaker in dict.fromkeys(speakers):
        index = np.flatnonzero(labels == speaker)
        sims = unit[index] @ robust_centroid(unit[index])
        threshold = cfg.min_cosine
        median = spread = float("nan")
        if len(index) >= cfg.min_clips:
            median, spread = _spread(sims, cfg.min_spread)
            threshold = max(threshold, median - cfg.outlier_mads * spread)
        for i, sim in zip(index, sims):
            if sim < threshold:
                out.append(Outlier(int(i), speaker, round(float(sim), 4), round(threshold, 4),
                                   detail=f"cosine {sim:.3f} to {speaker}'s centroid, limit "
                                          f"{threshold:.3f} (median {median:.3f}, spread "
                                          f"{spread:.3f}, floor {cfg.min_cosine:g}, "
                                          f"{len(index)} clips)"))
    return sorted(out, key=lambda o: o.index)


def voice_changes(window_embeddings, window_spans: Sequence[tuple[float, float]],
                  cfg: ConsistencyConfig = ConsistencyConfig()) -> list[ChangePoint]:
    """Where the voice changes in a sequence of (overlapping) windows of one recording."""
    unit = unit_rows(window_embeddings)
    if len(window_spans) != len(unit):
        raise ValueError(f"{len(unit)} window embeddings but {len(window_spans)} window spans")
    if len(unit) < 2:
        return []
    adjacent = np.sum(unit[1:] * unit[:-1], axis=1)
    median, spread = _spread(adjacent, cfg.min_spread)
    threshold = median - max(cfg.change_mads * spread, cfg.min_drop)
    changes, start = [], 0
    for t in range(1, len(unit)):
        centroid = unit[start:t].mean(axis=0)
        centroid /= max(np.linalg.norm(centroid), 1e-12)
        ahead = unit[t: t + 1 + cfg.confirm_windows] @ centroid
        if len(ahead) < 1 + cfg.confirm_windows or not np.all(ahead < threshold):
            continue
        lo, hi = window_spans[t][0], window_spans[t - 1][1]
        lo, hi = min(lo, hi), max(lo, hi)
        changes.append(ChangePoint(t, (lo + hi) / 2, lo, hi, round(float(ahead[0]), 4),
                                   round(threshold, 4)))
        start = t
    return changes


def sliding_windows(duration_s: float, length_s: float = 3.0,
                    hop_s: float = 1.0) -> list[tuple[float, float]]:
    """Windows to embed for ``voice_changes``: ``length_s`` long (speaker embedders want a few
    seconds of speech), every ``hop_s`` (how finely a change is placed); the last one ends at
    the end of the recording so no tail is left unchecked."""
    if duration_s <= length_s:
        return [(0.0, float(duration_s))]
    starts = [i * hop_s for i in range(int((duration_s - length_s) / hop_s) + 1)]
    if starts[-1] + length_s < duration_s:
        starts.append(duration_s - length_s)
    return [(round(s, 6), round(s + length_s, 6)) for s in starts]
