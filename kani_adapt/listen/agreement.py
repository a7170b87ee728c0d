"""Automatic judges against listeners: when a listening test asked the accent question, how well
does each number of the eval (accent posterior, accent shift, PER, CER) rank the clips as the
listeners did?

Spearman's rank correlation between the listeners' mean accent rating of each clip (a system's
rendering of an item) and the judge's figure for the same clip, and between each system's mean
rating and its mean figure; 95 % intervals from resampling items with replacement (a resample
whose ranks are all tied is left out). Expected signs: positive for the accent posterior and
shift (more of the accent, higher), negative for PER and CER (more errors, lower). With two
systems a per-system correlation can only be -1 or +1: it says whether the order agrees.
"""
from __future__ import annotations

import math

import numpy as np

JUDGES = {"accent_posterior": 1, "accent_shift": 1, "per": -1, "cer": -1}  # judge -> expected sign
RECORDINGS_ROW = "recordings"  # the eval's name for the recordings' own scores


def judge_values(material, sample: int = 0) -> dict[tuple[str, str], dict[str, float]]:
    """(system, item) -> the judges' figures from the first eval folder's utterances: a
    generated system's own row, the recording's and the codec round trip's reference rows."""
    import pandas as pd

    from kani_adapt.eval.run import CODEC_CEILING, RECORDING_WAVS

    path = material.folders[0] / "utterances.parquet" if material.folders else None
    if path is None or not path.is_file():
        return {}
    df = pd.read_parquet(path)
    judges = [j for j in JUDGES if j in df]
    if not judges:
        return {}
    by_key = {}
    for row in df.to_dict("records"):
        if row["checkpoint"] in (RECORDINGS_ROW, CODEC_CEILING) or int(row["sample"]) == sample:
            by_key[(row["checkpoint"], str(row["item"]))] = row
    reference = {RECORDING_WAVS: RECORDINGS_ROW, CODEC_CEILING: CODEC_CEILING}
    out = {}
    for (system, item_id) in material.clips:
        item = material.items[item_id]
        ref = item.reference.stem if item.reference is not None else ""
        row = by_key.get((reference[system], ref) if system in reference else (system, item_id))
        if row is not None:
            out[(system, item_id)] = {j: float(row[j]) for j in judges if _finite(row.get(j))}
    return out


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(spearmanr(x, y).statistic)


def _interval(point: float, boots: list[float], n: int) -> dict:
    finite = [b for b in boots if math.isfinite(b)]
    low, high = (np.percentile(finite, [2.5, 97.5]) if finite else (math.nan, math.nan))
    return {"rho": point, "low": float(low), "high": float(high), "n": n}


def agreement(rows: list[dict], material, resamples: int = 2000, seed: int = 0) -> dict:
    """judge -> {expected_sign, per_utterance: {rho, low, high, n}, per_system: {...}}; {} when
    no accent question was answered or the eval has none of the judges."""
    answers: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r["design"] == "accent":
            answers.setdefault((r["system_a"], r["item"]), []).append(float(r["answer"]))
    values = judge_values(material) if answers else {}
    if not values:
        return {}
    rng = np.random.default_rng(seed)
    out = {}
    for judge, sign in JUDGES.items():
        clips = [(k, np.mean(v), values[k][judge]) for k, v in answers.items()
                 if judge in values.get(k, {})]
        if len(clips) < 2:
            continue
        items = sorted({k[1] for k, _, _ in clips})
        draws = [rng.choice(len(items), len(items)) for _ in range(resamples)]

        def resampled(stat):
            boots = []
            for draw in draws:
                weight = np.bincount(draw, minlength=len(items))
                chosen = [c for c in clips for _ in range(weight[items.index(c[0][1])])]
                boots.append(stat(chosen))
            return boots
        out[judge] = {"expected_sign": sign,
                      "per_utterance": _interval(_utterances(clips), resampled(_utterances), len(clips)),
                      "per_system": _interval(_systems(clips), resampled(_systems),
                                              len({k[0] for k, _, _ in clips}))}
    return out


def _utterances(clips) -> float:
    return spearman([c[1] for c in clips], [c[2] for c in clips])


def _systems(clips) -> float:
    systems: dict[str, tuple[list, list]] = {}
    for (system, _), rating, value in clips:
        r, v = systems.setdefault(system, ([], []))
        r.append(rating)
        v.append(value)
    return spearman([np.mean(r) for r, _ in systems.values()], [np.mean(v) for _, v in systems.values()])
