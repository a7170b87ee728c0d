"""A simulated panel: listeners whose answers follow known system qualities, for the statistics
tests (and for figures: ``python -m tests.listen.panel`` prints the recovered ratings)."""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from kani_adapt.listen.material import ANCHOR, REFERENCE, Item, Material

# True Bradley-Terry strengths (log scale) and MUSHRA means of four systems.
STRENGTH = {"recording": 1.2, "adapted": 0.4, "codec_roundtrip": 0.0, "base": -1.6}
MUSHRA = {"recording": 90.0, "adapted": 70.0, "codec_roundtrip": 60.0, "base": 30.0, REFERENCE: 99.0, ANCHOR: 15.0}
TIE = 0.15  # chance of "no preference"


def panel_material(items: int = 12) -> Material:
    mat = Material([Path("eval")], list(STRENGTH), {}, {}, tags={"de_hessian": "German with a Hessian accent"})
    for k in range(items):
        mat.items[f"i{k}"] = Item(f"i{k}", "guten morgen wie geht es", "de_hessian", f"s{k % 3}",
                                  Path("r.wav"), "recording")
        for s in STRENGTH:
            mat.clips[(s, f"i{k}")] = Path(f"{s}.wav")
    return mat


def simulate(listeners: int = 6, items: int = 12, seed: int = 0, sleepy: int = 0) -> list[dict]:
    """AB over every pair, MUSHRA pages and AB checks; the last ``sleepy`` listeners answer at
    random (they fail the attention checks)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(listeners):
        name, random_answers = f"listener-{n + 1}", n >= listeners - sleepy
        bias = rng.normal(0, 4)  # some listeners rate everything higher
        for k in range(items):
            item = f"i{k}"
            for p, q in combinations(STRENGTH, 2):
                a, b = (p, q) if rng.random() < 0.5 else (q, p)
                win_a = 1 / (1 + np.exp(STRENGTH[b] - STRENGTH[a]))
                u = rng.random()
                answer = ("none" if u < TIE else "a" if rng.random() < win_a else "b") if not random_answers \
                    else str(rng.choice(["a", "b", "none"]))
                rows.append(_row(name, item, "ab", a, b, answer))
            for s, mean in MUSHRA.items():
                spread = 1.5 if s == REFERENCE else 6  # the hidden reference is easy to find
                score = rng.uniform(0, 100) if random_answers else mean + bias * (s != REFERENCE) + rng.normal(0, spread)
                rows.append(_row(name, item, "mushra", s, None, str(int(np.clip(round(score), 0, 100)))))
            if k < 2:  # two AB attention checks each
                rows.append(_row(name, item, "ab", REFERENCE, ANCHOR,
                                 str(rng.choice(["a", "b"])) if random_answers else "a", check=True))
    return rows


def _row(listener, item, design, a, b, answer, check=False) -> dict:
    return {"listener_name": listener, "item": item, "design": design, "system_a": a, "system_b": b,
            "answer": answer, "is_check": int(check)}


if __name__ == "__main__":
    from kani_adapt.listen.analysis import analyse
    from kani_adapt.listen.results import markdown

    res = analyse(simulate(sleepy=1, listeners=7), panel_material(), resamples=1000)
    print("true strengths (centred):", {s: round(v - np.mean(list(STRENGTH.values())), 2) for s, v in STRENGTH.items()})
    print("true MUSHRA means:", MUSHRA)
    print(markdown(res))
