"""Listening statistics against hand computations and a simulated panel."""
import numpy as np
import pytest

from kani_adapt.listen.analysis import analyse, bradley_terry, clustered_mean, screening
from kani_adapt.listen.material import ANCHOR, REFERENCE
from kani_adapt.listen.results import markdown
from tests.listen.panel import MUSHRA, STRENGTH, _row, panel_material, simulate


def hand_rows():
    return [
        _row("l1", "i1", "ab", "adapted", "base", "a"), _row("l1", "i2", "ab", "base", "adapted", "a"),
        _row("l2", "i1", "ab", "adapted", "base", "none"), _row("l2", "i2", "ab", "base", "adapted", "b"),
        # CMOS answers rate B against A
        _row("l1", "i1", "cmos", "adapted", "base", "-2"), _row("l2", "i1", "cmos", "base", "adapted", "1"),
        _row("l1", "i2", "cmos", "base", "adapted", "-1"),
        *[_row(l, i, "mushra", s, None, v) for l, i, s, v in [
            ("l1", "i1", "adapted", "70"), ("l2", "i2", "adapted", "50"), ("l1", "i1", "base", "20"),
            ("l2", "i2", "base", "40"), ("l1", "i1", REFERENCE, "100"), ("l2", "i2", REFERENCE, "95"),
            ("l1", "i1", ANCHOR, "10"), ("l2", "i2", ANCHOR, "30")]],
        _row("l1", "i0", "accent", "adapted", None, "4"), _row("l2", "i0", "accent", "adapted", None, "2"),
        _row("l1", "i1", "intelligibility", "adapted", None, "Guten Morgen, wie geht es?"),
        _row("l2", "i2", "intelligibility", "adapted", None, "guten morgen wie gehts"),
    ]


def test_results_match_a_hand_computation():
    res = analyse(hand_rows(), panel_material(3), resamples=300)
    ab = res["ab"]["adapted vs base"]
    assert ab["prefer_first"]["mean"] == pytest.approx(2 / 4)
    assert ab["prefer_second"]["mean"] == pytest.approx(1 / 4) and ab["no_preference"]["mean"] == pytest.approx(1 / 4)
    # adapted better by 2, by 1, worse by 1
    assert res["cmos"]["adapted vs base"]["cmos"]["mean"] == pytest.approx(2 / 3)
    mushra = {s: v["mean"] for s, v in res["mushra"].items()}
    assert mushra == pytest.approx({"adapted": 60, "base": 30, REFERENCE: 97.5, ANCHOR: 20})
    assert res["accent"]["adapted"]["all"]["mean"] == pytest.approx(3.0)
    assert set(res["accent"]["adapted"]["tags"]) == {"de_hessian"}
    cer = res["intelligibility"]["adapted"]
    # punctuation and case are not errors; "gehts" for "geht es" is two deleted characters of 24
    assert cer["mean"] == pytest.approx((0 + 2 / 24) / 2) and cer["n"] == 2
    for interval in (ab["prefer_first"], res["mushra"]["adapted"]):
        assert interval["low"] <= interval["mean"] <= interval["high"]


def test_intervals_widen_when_listeners_disagree_with_each_other():
    listeners = np.repeat(np.arange(6), 10)
    items = np.tile(np.arange(10), 6)
    split = np.where(listeners < 3, 2.0, -2.0)  # half the panel always +2, half always -2
    mixed = np.where((listeners + items) % 2 == 0, 2.0, -2.0)  # every listener half and half
    a, b = clustered_mean(split, listeners, items, 1000), clustered_mean(mixed, listeners, items, 1000)
    assert a.mean == b.mean == 0.0
    assert (a.high - a.low) > 2 * (b.high - b.low)
    # treating each judgement as its own listener would hide the disagreement
    iid = clustered_mean(split, np.arange(60), items, 1000)
    assert (a.high - a.low) > 1.5 * (iid.high - iid.low)
    assert a.clusters == 6 and a.n == 60


def test_listeners_who_fail_the_attention_checks_are_left_out():
    rows = simulate(listeners=6, items=6, seed=1, sleepy=1)
    screened = screening(rows)
    assert [n for n, s in screened.items() if s["excluded"]] == ["listener-6"]
    assert screened["listener-1"]["checks"] == 6 + 2  # a hidden reference per MUSHRA page, two AB checks
    res = analyse(rows, panel_material(6), resamples=200)
    assert res["excluded"] == ["listener-6"]
    assert res["judgements"] == len([r for r in rows if r["listener_name"] != "listener-6"])
    kept = analyse(rows, panel_material(6), resamples=200, keep_all=True)
    assert kept["excluded"] == [] and kept["judgements"] == len(rows)
    assert "--keep-all" not in markdown(res)
    everyone = analyse(simulate(listeners=2, items=6, seed=1, sleepy=2), panel_material(6), resamples=50)
    assert everyone["judgements"] == 0 and "`--keep-all` shows their answers" in markdown(everyone)


def test_a_simulated_panel_recovers_the_systems_order_and_strengths():
    res = analyse(simulate(listeners=6, items=12, seed=0), panel_material(12), resamples=400)
    bt = res["bradley_terry"]["ratings"]
    order = sorted(bt, key=lambda s: -bt[s]["mean"])
    assert order == sorted(STRENGTH, key=lambda s: -STRENGTH[s])
    true = np.array(list(STRENGTH.values())) - np.mean(list(STRENGTH.values()))
    for s, t in zip(STRENGTH, true):
        # "no preference" answers (15 %) pull the fitted strengths together a little
        assert bt[s]["low"] - 0.3 <= t <= bt[s]["high"] + 0.3, (s, t, bt[s])
    assert bt["recording"]["low"] > bt["base"]["high"]  # clearly apart
    mushra = res["mushra"]
    for s, mean in MUSHRA.items():
        assert abs(mushra[s]["mean"] - mean) < 6, s


def test_ties_count_half_a_win_each_way():
    rows = [_row("l1", f"i{k}", "ab", "x", "y", "none") for k in range(4)]
    rows += [_row("l2", "i0", "ab", "x", "y", "a"), _row("l2", "i1", "ab", "y", "x", "a")]
    bt = bradley_terry(rows, ["x", "y"], resamples=50)["ratings"]
    assert bt["x"]["mean"] == pytest.approx(bt["y"]["mean"], abs=1e-6)
    one_sided = bradley_terry([_row("l1", f"i{k}", "ab", "x", "y", "a") for k in range(4)], ["x", "y"], 50)
    assert one_sided["ratings"]["x"]["mean"] > one_sided["ratings"]["y"]["mean"]


def test_an_ab_check_passes_only_when_the_hidden_reference_wins():
    from kani_adapt.listen.analysis import check_passed

    def ab(a, b, answer):
        return _row("l1", "i1", "ab", a, b, answer, check=True)

    assert check_passed(ab(REFERENCE, ANCHOR, "a")) and check_passed(ab(ANCHOR, REFERENCE, "b"))
    assert not check_passed(ab(ANCHOR, REFERENCE, "a")) and not check_passed(ab(REFERENCE, ANCHOR, "none"))
    assert check_passed(_row("l1", "i1", "mushra", REFERENCE, None, "90"))
    assert not check_passed(_row("l1", "i1", "mushra", REFERENCE, None, "89"))
    assert check_passed(_row("l1", "i1", "ab", "x", "y", "a")) is None  # not a check
