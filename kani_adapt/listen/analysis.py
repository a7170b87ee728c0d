"""The statistics of a listening test, from the judgement rows of the store.

Judgements of one listener are not independent, nor are judgements of one sentence, so every
interval comes from a two-way clustered bootstrap: each resample draws listeners and items with
replacement, independently, and weighs a judgement by how often its listener and its item were
drawn. Listeners who fail more than 15 % of their attention checks (the hidden reference rated
below 90 in MUSHRA, the low anchor preferred to the reference in AB; after ITU-R BS.1534) are
left out of every figure unless ``keep_all``.

Pairwise preferences (AB) also give Bradley-Terry strengths (``choix``, the maximum-likelihood
fit by iterative Luce spectral ranking), a "no preference" counted as half a win each way; their
intervals come from the same bootstrap.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from kani_adapt.eval.stats import NAN_INTERVAL, Interval
from kani_adapt.listen.material import ANCHOR, REFERENCE, Material

CHECK_MUSHRA_MIN = 90
CHECK_MAX_FAILED = 0.15
BT_ALPHA = 0.01  # a little regularisation: a system that never won still gets a finite strength


def _index(values) -> tuple[np.ndarray, int]:
    _, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    return inverse, int(inverse.max()) + 1 if len(inverse) else 0


def bootstrap_weights(listeners, items, resamples: int, seed: int) -> np.ndarray:
    """(resamples, judgements): how often each judgement's listener times its item was drawn."""
    li, n_l = _index(listeners)
    ii, n_i = _index(items)
    rng = np.random.default_rng(seed)
    wl = rng.multinomial(n_l, np.full(n_l, 1 / n_l), size=resamples)
    wi = rng.multinomial(n_i, np.full(n_i, 1 / n_i), size=resamples)
    return (wl[:, li] * wi[:, ii]).astype(np.float64)


def clustered_mean(values, listeners, items, resamples: int = 2000, seed: int = 0,
                   level: float = 0.95) -> Interval:
    """The mean with a percentile interval from the two-way (listener x item) bootstrap."""
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    values, listeners, items = values[keep], np.asarray(listeners)[keep], np.asarray(items)[keep]
    if not values.size:
        return NAN_INTERVAL
    w = bootstrap_weights(listeners, items, resamples, seed)
    total = w.sum(axis=1)
    means = (w @ values)[total > 0] / total[total > 0]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(values.mean()), float(low), float(high), int(values.size),
                    len(set(np.asarray(listeners, dtype=str))))


def check_passed(row: dict) -> bool | None:
    """True/False for an attention-check judgement, None for any other."""
    if row["design"] == "ab" and row["is_check"]:
        winner = {"a": row["system_a"], "b": row["system_b"]}.get(row["answer"])
        return winner == REFERENCE
    if row["design"] == "mushra" and row["system_a"] == REFERENCE:
        return int(row["answer"]) >= CHECK_MUSHRA_MIN
    return None


def screening(rows: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(row["listener_name"], {"judgements": 0, "checks": 0, "failed": 0})
        entry["judgements"] += 1
        passed = check_passed(row)
        if passed is not None:
            entry["checks"] += 1
            entry["failed"] += not passed
    for entry in out.values():
        entry["excluded"] = bool(entry["checks"]) and entry["failed"] / entry["checks"] > CHECK_MAX_FAILED
    return out


def _winner(row: dict) -> str | None:
    return {"a": row["system_a"], "b": row["system_b"]}.get(row["answer"])


def _pairs(rows: list[dict], design: str, systems: list[str]):
    order = {s: k for k, s in enumerate(systems)}
    judged = [r for r in rows if r["design"] == design and not r["is_check"]]
    for p, q in combinations(systems, 2):
        yield p, q, [r for r in judged if {r["system_a"], r["system_b"]} == {p, q}], order


def preferences(rows: list[dict], systems: list[str], resamples: int) -> dict:
    out = {}
    for p, q, part, _ in _pairs(rows, "ab", systems):
        if not part:
            continue
        lis, its = [r["listener_name"] for r in part], [r["item"] for r in part]
        won = [_winner(r) for r in part]
        out[f"{p} vs {q}"] = {"pair": [p, q], **{
            key: clustered_mean([float(w == who) for w in won], lis, its, resamples).as_dict()
            for key, who in (("prefer_first", p), ("prefer_second", q), ("no_preference", None))}}
    return out


def cmos(rows: list[dict], systems: list[str], resamples: int) -> dict:
    """Per pair (first, second): how much better the first is, from -3 to +3 (an answer rates B
    against A; it is turned so that a positive mean favours the first system)."""
    out = {}
    for p, q, part, _ in _pairs(rows, "cmos", systems):
        if part:
            values = [int(r["answer"]) * (1 if r["system_b"] == p else -1) for r in part]
            out[f"{p} vs {q}"] = {"pair": [p, q], "cmos": clustered_mean(
                values, [r["listener_name"] for r in part], [r["item"] for r in part], resamples).as_dict()}
    return out


def _per_system(rows: list[dict], design: str, value, resamples: int) -> dict:
    out = {}
    for system in dict.fromkeys(r["system_a"] for r in rows if r["design"] == design):
        part = [r for r in rows if r["design"] == design and r["system_a"] == system]
        out[system] = clustered_mean([value(r) for r in part], [r["listener_name"] for r in part],
                                     [r["item"] for r in part], resamples).as_dict()
    return out


def accent(rows: list[dict], material: Material, resamples: int) -> dict:
    out = {}
    for system, overall in _per_system(rows, "accent", lambda r: float(r["answer"]), resamples).items():
        tags = {}
        for tag in sorted({material.items[r["item"]].tag for r in rows if r["design"] == "accent"}):
            part = [r for r in rows if r["design"] == "accent" and r["system_a"] == system
                    and material.items[r["item"]].tag == tag]
            if part:
                tags[tag] = clustered_mean([float(r["answer"]) for r in part], [r["listener_name"] for r in part],
                                           [r["item"] for r in part], resamples).as_dict()
        out[system] = {"all": overall, "tags": tags}
    return out


def listener_cer(row: dict, material: Material) -> float:
    from kani_adapt.scorers.text import error_rates
    from kani_adapt.text.tags import language_of

    item = material.items[row["item"]]
    return error_rates(item.text, row["answer"], language_of(item.tag, material.languages)).cer


def bradley_terry(rows: list[dict], systems: list[str], resamples: int, seed: int = 0) -> dict:
    """Strengths (natural-log scale, mean 0) of every system in an AB judgement, with intervals."""
    import choix

    ab = [r for r in rows if r["design"] == "ab" and not r["is_check"]]
    names = [s for s in systems if any(s in (r["system_a"], r["system_b"]) for r in ab)]
    if len(names) < 2:
        return {}
    index = {s: k for k, s in enumerate(names)}
    a = np.array([index[r["system_a"]] for r in ab])
    b = np.array([index[r["system_b"]] for r in ab])
    win_a = np.array([{"a": 1.0, "b": 0.0}.get(r["answer"], 0.5) for r in ab])

    def fit(weights: np.ndarray) -> np.ndarray:
        wins = np.zeros((len(names), len(names)))
        np.add.at(wins, (a, b), weights * win_a)
        np.add.at(wins, (b, a), weights * (1 - win_a))
        theta = choix.ilsr_pairwise_dense(wins, alpha=BT_ALPHA)
        return theta - theta.mean()

    point = fit(np.ones(len(ab)))
    boots = np.array([fit(w) for w in bootstrap_weights([r["listener_name"] for r in ab],
                                                         [r["item"] for r in ab], resamples, seed)])
    low, high = np.percentile(boots, [2.5, 97.5], axis=0)
    listeners = len({r["listener_name"] for r in ab})
    return {"model": "Bradley-Terry (choix.ilsr_pairwise_dense), no preference = half a win each way",
            "comparisons": len(ab),
            "ratings": {s: Interval(float(point[k]), float(low[k]), float(high[k]), len(ab), listeners).as_dict()
                        for s, k in index.items()}}


def _agreement(rows: list[dict], material: Material, resamples: int) -> dict:
    """The eval's automatic judges against the listeners' accent ratings (listen/agreement.py)."""
    from kani_adapt.listen.agreement import agreement

    return agreement(rows, material, resamples)


def analyse(rows: list[dict], material: Material, resamples: int = 2000, keep_all: bool = False) -> dict:
    screened = screening(rows)
    excluded = sorted(n for n, s in screened.items() if s["excluded"])
    used = rows if keep_all else [r for r in rows if r["listener_name"] not in excluded]
    systems = [*material.systems]
    return {
        "listeners": len(screened), "excluded": [] if keep_all else excluded, "screening": screened,
        "judgements": len(used), "systems": systems,
        "ab": preferences(used, systems, resamples),
        "cmos": cmos(used, systems, resamples),
        "mushra": _per_system(used, "mushra", lambda r: float(r["answer"]), resamples),
        "accent": accent(used, material, resamples),
        "intelligibility": _per_system(used, "intelligibility", lambda r: listener_cer(r, material), resamples),
        "bradley_terry": bradley_terry(used, systems, min(resamples, 500)),
        "agreement": _agreement(used, material, resamples),
        "tags": {t: material.describe(t) for t in sorted({i.tag for i in material.items.values() if i.tag})},
        "anchor": ANCHOR,
    }
