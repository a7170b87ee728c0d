"""Learning curves: the saturating power law recovers a known curve, the fallbacks say why, the
hours to a target (or "not reachable by hours alone"), bootstrap intervals over eval speakers,
and the held-out check of the largest pilot."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kani_adapt.planning import analysis, curves

HOURS = np.array([1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0]) * 2.0  # the largest pilot: 2 h


def law(hours, a=0.10, b=0.20, c=0.6, scale=2.0):
    return a + b * (np.asarray(hours) / scale) ** -c


def test_the_power_law_recovers_a_known_curve_and_where_it_flattens():
    curve = curves.fit(HOURS, law(HOURS))
    assert curve.kind == curves.POWER_LAW and curve.scale == 2.0
    assert curve.params == pytest.approx((0.10, 0.20, 0.6), abs=1e-4)
    assert curve.flattens_at() == pytest.approx(0.10, abs=1e-4)
    assert float(curve.at(20.0)) == pytest.approx(law(20.0), rel=1e-4)  # 10x the data


def test_hours_to_a_target_and_not_reachable_by_hours_alone():
    curve = curves.fit(HOURS, law(HOURS))
    need = curve.hours_for(0.2, higher_is_better=False)  # 0.1 + 0.2 x^-0.6 = 0.2 -> x = 2^(1/0.6)
    assert need == pytest.approx(2.0 * 2 ** (1 / 0.6), rel=1e-3)
    assert curve.hours_for(0.09, higher_is_better=False) == math.inf  # below where it flattens
    rising = curves.fit(HOURS, 1 - law(HOURS))  # a higher-is-better metric, the mirror image
    assert rising.hours_for(0.8, higher_is_better=True) == pytest.approx(need, rel=1e-3)
    # a curve that gets worse with hours never reaches a better figure
    assert curves.fit(HOURS, 1 - law(HOURS)).hours_for(0.0, higher_is_better=False) == math.inf


def test_three_points_fall_back_to_a_log_linear_line_and_two_to_none():
    three = curves.fit(HOURS[:3], law(HOURS[:3]))
    assert three.kind == curves.LOG_LINEAR and "3 points" in three.reason
    line = 0.5 - 0.1 * np.log(HOURS[:3] / HOURS[2])
    exact = curves.fit(HOURS[:3], line)
    assert exact.params == pytest.approx((0.5, -0.1))
    assert exact.flattens_at() != exact.flattens_at()  # NaN: a line never flattens
    two = curves.fit(HOURS[:2], law(HOURS[:2]))
    assert two.kind == curves.NONE and "not enough points" in two.reason
    assert np.isnan(two.at(1.0)) and math.isnan(two.hours_for(0.2, False))
    # a non-finite figure (a pilot that measured nothing) is left out, not fitted
    holed = law(HOURS).copy()
    holed[1] = np.nan
    assert curves.fit(HOURS, holed).kind == curves.POWER_LAW


def test_speaker_draws_resample_with_replacement_and_figures_pool_sums():
    draws = curves.speaker_draws(["a", "b", "c"], 500, seed=1)
    assert draws.shape == (500, 3) and (draws.sum(1) == 3).all()
    assert (draws == 0).any() and (draws >= 2).any()  # some speakers missing, some twice
    sums = {"a": [1.0, 10.0], "b": [3.0, 10.0], "c": [8.0, 20.0]}
    point, drawn = curves.figures(sums, ["a", "b", "c"], draws)
    assert point == pytest.approx(12 / 40)  # pooled, not a mean of means
    only_c = (draws[:, 2] == 3)
    assert np.allclose(drawn[only_c], 0.4)
    low, high = curves.interval(drawn)
    assert 0.1 <= low < point < high <= 0.4
    assert curves.speaker_draws(["a", "b"], 50, 3).tolist() == curves.speaker_draws(["a", "b"], 50, 3).tolist()


def _measured(values, speakers=12, noise=0.01, seed=0):
    """Pilots on ``HOURS`` whose per-speaker figures scatter around ``values``."""
    rng = np.random.default_rng(seed)
    names = [f"s{k}" for k in range(speakers)]
    offsets = rng.normal(0, noise, speakers)  # a speaker is harder or easier in every pilot
    draws = curves.speaker_draws(names, 100, seed)
    out = []
    for h, v in zip(HOURS, values):
        sums = {n: [float(v + o + rng.normal(0, noise / 4)) * 5, 5.0] for n, o in zip(names, offsets)}
        point, drawn = curves.figures(sums, names, draws)
        out.append(analysis.Measured(f"hours-{h:g}", float(h), 5, point, drawn))
    return out


def test_analysis_predicts_2x_4x_10x_with_intervals_and_checks_the_largest_held_out():
    hours = _measured(law(HOURS))
    result = analysis.analyse(analysis.Inputs("heldout_loss", False, hours, [], None, None,
                                              (0.2, "given")))
    assert result["curve"]["kind"] == curves.POWER_LAW
    assert [p["factor"] for p in result["predictions"]] == [2, 4, 10]
    for p in result["predictions"]:
        assert p["hours"] == pytest.approx(p["factor"] * 2.0)
        assert p["low"] <= p["value"] <= p["high"]
        assert p["value"] == pytest.approx(law(p["hours"]), abs=0.01)
    target = result["target"]
    assert target["state"] == "needs" and target["low"] <= target["hours"] <= target["high"]
    assert target["hours"] == pytest.approx(2.0 * 2 ** (1 / 0.6), rel=0.25)
    check = result["check"]
    assert check["pilot"] == hours[-1].name and check["from_hours"] == 1.0
    assert check["measured"] == pytest.approx(hours[-1].point)
    assert abs(check["error"]) < 0.01 and check["inside"]
    assert abs(check["error"]) < abs(check["flat_error"])  # the curve beats a flat guess
    band = result["band"]
    assert band["hours"][0] == pytest.approx(HOURS[0]) and band["hours"][-1] == pytest.approx(20.0)
    assert all(lo <= hi for lo, hi in zip(band["low"], band["high"]))


def test_a_target_below_where_the_curve_flattens_is_not_reachable_by_hours_alone():
    result = analysis.analyse(analysis.Inputs("heldout_loss", False, _measured(law(HOURS)), [],
                                              None, None, (0.05, "given")))
    target = result["target"]
    assert target["state"] == "unreachable" and target["hours"] == math.inf
    assert target["flattens_at"] == pytest.approx(0.10, abs=0.01)
    assert target["unreachable_share"] > 0.9


def test_pilots_that_move_less_than_their_intervals_are_too_noisy_to_fit():
    flat = _measured([0.5, 0.501, 0.499, 0.5, 0.5005], noise=0.2)
    result = analysis.analyse(analysis.Inputs("cer", False, flat, [], None, None, None))
    assert result["curve"]["kind"] == curves.NONE
    assert result["curve"]["reason"].startswith("too noisy to fit")
    assert result["band"] == {} and math.isnan(result["predictions"][0]["value"])


def test_no_pilot_moved_from_the_base_is_flagged_and_the_voices_axis_reads_paired_draws():
    hours = _measured(law(HOURS))
    base = _measured([law(HOURS)[0]] * 5)[0]  # the base as good as the smallest pilot
    moved = analysis.analyse(analysis.Inputs("heldout_loss", False, hours, [], base, None, None))
    assert not any("moved" in f for f in moved["flags"])
    same = analysis.analyse(analysis.Inputs("heldout_loss", False, [base] * 5, [], base, None, None))
    assert any(f.startswith("no pilot moved heldout_loss") for f in same["flags"])
    few, many = _measured([0.4, 0.3])[:2]
    few.voices, many.voices = 2, 5
    verdict = analysis.analyse(analysis.Inputs("heldout_loss", False, hours, [few, many], None,
                                               None, None))["voices"]
    assert verdict["diff"]["from"] == 2 and verdict["diff"]["to"] == 5
    assert verdict["verdict"] == "better with more voices" and verdict["diff"]["high"] < 0
    level = analysis.analyse(analysis.Inputs("heldout_loss", False, hours, [few, few], None,
                                             None, None))["voices"]
    assert level["verdict"].startswith("no clear change")


def test_default_targets_follow_the_recordings_and_the_base():
    assert analysis.default_target("cer", 0.5, 0.04)[0] == pytest.approx(0.048)
    assert analysis.default_target("catastrophic", 0.3, None)[0] == pytest.approx(0.15)
    assert analysis.default_target("cer", 0.5, None) is None
    assert analysis.default_target("heldout_loss", 3.0, None) is None


def test_the_held_out_check_fits_without_the_largest_pilot_and_reports_how_far_it_missed():
    values = law(HOURS)
    values[-1] -= 0.05  # the largest pilot did better than the first four foretell
    check = analysis.analyse(analysis.Inputs("heldout_loss", False, _measured(values), [], None,
                                             None, None))["check"]
    assert check["predicted"] == pytest.approx(law(HOURS[-1]), abs=0.01)
    assert check["error"] == pytest.approx(0.05, abs=0.01)
    assert check["relative_error"] == pytest.approx(0.05 / values[-1], abs=0.03)
    assert not check["inside"]


def test_a_power_law_that_shows_no_flattening_is_flagged():
    straight = np.array([11.0, 10.816, 10.336, 9.323, 8.471])  # faster at each doubling
    result = analysis.analyse(analysis.Inputs("heldout_loss", False, _measured(straight), [],
                                              None, None, None))
    assert result["curve"]["kind"] == curves.POWER_LAW
    assert any("sits at its bound" in f for f in result["flags"])
    saturating = analysis.analyse(analysis.Inputs("heldout_loss", False, _measured(law(HOURS)),
                                                  [], None, None, None))
    assert not any("sits at its bound" in f for f in saturating["flags"])
