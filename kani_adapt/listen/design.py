"""Which trials a listener gets, in which order, with which sides: pure functions.

Designs run in blocks, in this order: intelligibility first (a sentence is transcribed before
it has been heard again and again), then AB preference, CMOS, MUSHRA and the accent question.
Within a block the order of the trials is random per listener, and so are the sides of a pair
and the slots of a MUSHRA page. Where a listener does not get every trial (``per_design``), the
trials fewest listeners had so far come first, so a panel covers all of them evenly; each
listener transcribes every sentence once, by the system fewest listeners transcribed it from.

Attention checks: AB trials of the hidden reference against the low anchor (the reference
should win), and in MUSHRA the hidden reference itself (it should be rated 90 or more).
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

from kani_adapt.listen.material import ANCHOR, REFERENCE, Material

DESIGNS = ("intelligibility", "ab", "cmos", "mushra", "accent")
PAIRED = ("ab", "cmos")


@dataclass(frozen=True)
class Trial:
    design: str
    item: str
    stimuli: tuple[str, ...]  # systems in slot order (A, B / the MUSHRA slots / the one clip)
    check: bool = False  # an attention check

    def key(self) -> tuple:
        """The same trial whatever the sides: what the balancing counts."""
        return self.design, self.item, tuple(sorted(self.stimuli))


@dataclass(frozen=True)
class PlanSettings:
    designs: tuple[str, ...] = DESIGNS
    per_design: int = 0  # trials per design and listener (0: all of them)
    checks: int = 2  # AB attention checks per listener (hidden reference vs low anchor)


def candidates(material: Material) -> dict[str, list[Trial]]:
    """Every trial the material allows, per design (sides not yet drawn)."""
    out: dict[str, list[Trial]] = {d: [] for d in DESIGNS}
    for item_id, item in material.items.items():
        systems = material.systems_of(item_id)
        out["intelligibility"] += [Trial("intelligibility", item_id, (s,)) for s in systems]
        for design in PAIRED:
            out[design] += [Trial(design, item_id, pair) for pair in combinations(systems, 2)]
        if item.reference is not None:
            rated = [s for s in systems if s != item.reference_system]
            out["mushra"].append(Trial("mushra", item_id, (*rated, REFERENCE, ANCHOR)))
        if item.tag:
            out["accent"] += [Trial("accent", item_id, (s,)) for s in systems]
    return out


def _least_counted(trials: list[Trial], counts: Counter, rng: random.Random) -> list[Trial]:
    return sorted(trials, key=lambda t: (counts[t.key()], rng.random()))


def _drawn(trial: Trial, rng: random.Random) -> Trial:
    stimuli = list(trial.stimuli)
    rng.shuffle(stimuli)
    return Trial(trial.design, trial.item, tuple(stimuli), trial.check)


def _block(design: str, trials: list[Trial], settings: PlanSettings, counts: Counter,
           rng: random.Random) -> list[Trial]:
    if design == "intelligibility":  # one system per sentence
        by_item: dict[str, list[Trial]] = {}
        for t in trials:
            by_item.setdefault(t.item, []).append(t)
        chosen = [_least_counted(ts, counts, rng)[0] for ts in by_item.values()]
    else:
        chosen = _least_counted(trials, counts, rng)
    if settings.per_design:
        chosen = _least_counted(chosen, counts, rng)[:settings.per_design]
    rng.shuffle(chosen)
    return [_drawn(t, rng) for t in chosen]


def plan(material: Material, settings: PlanSettings, seed: int, counts: Counter | None = None) -> list[Trial]:
    """One listener's trials in order. ``counts``: how often each ``Trial.key()`` was given to
    the listeners before this one."""
    rng, counts = random.Random(seed), counts or Counter()
    pool = candidates(material)
    out: list[Trial] = []
    for design in DESIGNS:
        if design not in settings.designs or not pool[design]:
            continue
        block = _block(design, pool[design], settings, counts, rng)
        if design == "ab":
            with_ref = sorted(i for i, it in material.items.items() if it.reference is not None)
            for item in rng.sample(with_ref, min(settings.checks, len(with_ref))):
                block.insert(rng.randrange(len(block) + 1),
                             _drawn(Trial("ab", item, (REFERENCE, ANCHOR), check=True), rng))
        out += block
    return out
