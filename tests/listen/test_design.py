"""Per-listener plans: blocks, random order and sides, balancing, attention checks."""
from collections import Counter
from pathlib import Path

from kani_adapt.listen.design import DESIGNS, PlanSettings, Trial, candidates, plan
from kani_adapt.listen.material import ANCHOR, REFERENCE, Item, Material

SYSTEMS = ["adapted", "base", "recording"]


def material(items: int = 6, with_reference: bool = True) -> Material:
    mat = Material([Path("eval")], list(SYSTEMS), {}, {})
    for k in range(items):
        ref = Path(f"r{k}.wav") if with_reference else None
        mat.items[f"i{k}"] = Item(f"i{k}", f"text {k}", "de" if k % 2 else "", "s", ref,
                                  "recording" if with_reference else "")
        for s in SYSTEMS if with_reference else SYSTEMS[:2]:
            mat.clips[(s, f"i{k}")] = Path(f"{s}{k}.wav")
    return mat


def test_designs_come_in_blocks_in_the_stated_order_with_every_trial_once():
    mat = material()
    trials = plan(mat, PlanSettings(checks=0), seed=1)
    blocks = [t.design for t in trials]
    assert blocks == sorted(blocks, key=DESIGNS.index)
    pool = candidates(mat)
    for design in ("ab", "cmos", "mushra", "accent"):
        assert sorted(t.key() for t in trials if t.design == design) == sorted(t.key() for t in pool[design])
    # one transcription per sentence (hearing it again would help)
    assert sorted(t.item for t in trials if t.design == "intelligibility") == sorted(mat.items)


def test_order_and_sides_are_drawn_per_listener():
    mat = material()
    a, b = plan(mat, PlanSettings(), seed=1), plan(mat, PlanSettings(), seed=2)
    assert a != b and plan(mat, PlanSettings(), seed=1) == a  # reproducible from the seed
    first = Counter()
    for seed in range(200):
        for t in plan(mat, PlanSettings(designs=("ab",), checks=0), seed):
            first[t.stimuli[0]] += 1
    # each system is in 2 pairs per item: 200 x 6 x 2 = 2400 showings, about half on the left
    assert all(abs(first[s] - 1200) < 110 for s in SYSTEMS), first


def test_mushra_pages_hold_the_hidden_reference_and_the_anchor_not_the_labelled_reference():
    trials = [t for t in plan(material(), PlanSettings(), seed=3) if t.design == "mushra"]
    assert len(trials) == 6
    for t in trials:
        assert sorted(t.stimuli) == sorted(["adapted", "base", REFERENCE, ANCHOR])
    assert len({t.stimuli for t in trials}) > 1  # slots shuffled


def test_ab_attention_checks_pit_the_reference_against_the_anchor():
    trials = plan(material(), PlanSettings(checks=3), seed=4)
    checks = [t for t in trials if t.check]
    assert len(checks) == 3 and all(t.design == "ab" and set(t.stimuli) == {REFERENCE, ANCHOR} for t in checks)
    assert len({t.item for t in checks}) == 3


def test_without_a_reference_there_is_no_mushra_and_no_check():
    trials = plan(material(with_reference=False), PlanSettings(checks=2), seed=0)
    assert not [t for t in trials if t.design == "mushra" or t.check]
    assert [t for t in trials if t.design == "ab"]


def test_the_least_judged_trials_go_to_the_next_listener():
    mat, counts = material(), Counter()
    settings = PlanSettings(designs=("ab", "intelligibility"), per_design=6, checks=0)
    seen = []
    for seed in range(3):  # 18 AB pairs, 6 per listener: three listeners cover them all once
        trials = plan(mat, settings, seed, counts)
        counts.update(t.key() for t in trials)
        seen.append({t.key() for t in trials if t.design == "ab"})
    assert len(seen[0] | seen[1] | seen[2]) == 18 and sum(map(len, seen)) == 18
    # 3 listeners x 6 sentences: every sentence transcribed once from each system
    intel = Counter(k for k in counts if k[0] == "intelligibility")
    assert len(intel) == 18 and set(intel.values()) == {1}


def test_a_trial_key_ignores_the_sides():
    assert Trial("ab", "i", ("a", "b")).key() == Trial("ab", "i", ("b", "a")).key()
