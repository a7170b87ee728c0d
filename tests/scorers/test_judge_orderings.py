"""scripts/judge_orderings.py: its systems are ranked by each metric's registry direction, a
corpus figure is a corpus rate, and (slow) the whole script on a small espeak-ng world."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from kani_adapt.scorers.registry import REGISTRY, higher_is_better

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "judge_orderings.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("judge_orderings", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def figures_shown(script) -> list[str]:
    return [m for _, _, metrics in script.JUDGES for m in metrics]


def test_every_judge_and_figure_is_the_registrys(script):
    scorers = {s.name for s in REGISTRY}
    assert {judge for judge, _, _ in script.JUDGES} <= scorers
    outside = [m for m in figures_shown(script) if m not in higher_is_better()]
    assert outside == ["ctc_cer"]  # the CTC transcript's CER, ranked as the registry ranks cer


def test_systems_are_ranked_by_each_metrics_registry_direction(script):
    directions = higher_is_better()
    for metric in figures_shown(script):
        higher = directions[metric] if metric in directions else directions["cer"]
        got = script.ordering({"low": 0.1, "high": 0.9, "unmeasured": math.nan}, metric)
        assert got == ([["high"], ["low"]] if higher else [["low"], ["high"]]), metric


def test_equal_figures_share_a_place_and_fail_the_strict_check(script):
    places = script.ordering({"recordings": 0.2, "base-accent": 0.5, "degraded": 0.5,
                              "noise": 0.9, "silence": 0.9}, "corpus_per")
    assert places == [["recordings"], ["base-accent", "degraded"], ["noise", "silence"]]
    assert script.above(places, ("recordings", "base-accent")) == "yes"
    tied = script.ordering({"recordings": 0.5, "base-accent": 0.5, "noise": 0.9, "silence": 0.9},
                           "corpus_per")
    assert script.above(tied, ("recordings", "base-accent")) == "no"
    assert script.above(tied, ("recordings", "degraded")) == "n/a"
    garbage_tied = script.ordering({"recordings": 0.1, "base-accent": 0.9, "noise": 0.9,
                                    "silence": 1.0}, "corpus_per")
    assert script.above(garbage_tied, ("recordings", "base-accent")) == "no"


def test_a_corpus_figure_sums_edits_over_units(script):
    # 1 edit in 10 phones and 9 in 90: the corpus rate is 10 / 100 = 0.1, the mean of the
    # clips' rates 0.5
    rows = [dict(checkpoint="recordings", per=0.1, per_edits=1.0, ref_phones=10.0),
            dict(checkpoint="recordings", per=0.9, per_edits=9.0, ref_phones=90.0),
            dict(checkpoint="noise", per=1.0, per_edits=math.nan, ref_phones=math.nan)]
    got = script.figure(pd.DataFrame(rows), "corpus_per")
    assert got["recordings"] == pytest.approx(0.1)
    assert math.isnan(got["noise"]) and math.isnan(got["silence"])
    assert script.figure(pd.DataFrame(rows), "per")["recordings"] == pytest.approx(0.5)


@pytest.mark.slow
def test_the_script_ranks_a_small_espeak_world(script, tmp_path):
    out = tmp_path / "orderings.json"
    assert script.main(["--sentences", "2", "--variants", ",+f3", "--json", str(out)]) == 0
    rows = {r["figure"]: r for r in json.loads(out.read_text())}
    assert set(rows) == set(figures_shown(script))
    # the real judges on real espeak-ng speech: DNSMOS hears speech above noise, the failure
    # rules call the near-silence silent and nothing else
    p808 = rows["dnsmos_p808"]["figures"]
    assert min(p808["recordings"], p808["base-accent"]) > max(p808["noise"], p808["silence"])
    failure = rows["failure"]["figures"]
    assert failure["silence"] == 1.0 and failure["recordings"] == failure["base-accent"] == 0.0
    for row in rows.values():  # every figure measured for every system
        assert all(not math.isnan(v) for v in row["figures"].values()), row["figure"]
