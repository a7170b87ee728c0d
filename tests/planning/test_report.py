"""The plan's figures and report from pilot records: the curves and the cost from what the pilots
measured, plan.md with a three-line answer on top, the page with one picture per metric whose
measured points are drawn where the figures say, and names from the data escaped everywhere.

The records are written here as pilots write them (per-speaker sums of each metric, steps,
seconds), around a known curve, so that the figures can be checked against it; the pilots
themselves run in test_tiny_world.py."""
from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest

from kani_adapt import dataset
from kani_adapt.config.typed import from_dict
from kani_adapt.planning import plan as planning, report, subsets
from kani_adapt.planning.config import PlanConfig
from kani_adapt.planning.metrics import HELDOUT
from kani_adapt.planning.pilots import Pilot
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.synthetic import synthetic_rows

HOSTILE = ["<script>alert(1)</script>", "*x*|`y`", "[a](javascript:alert(2))"]
NAME = "plan <img src=x onerror=alert(3)>"


def _law(hours, full):
    return 2.0 + 3.0 * (hours / full) ** -0.5


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    rows = synthetic_rows(8, 24, seed=3, frames_range=(30, 50))
    for r in rows:  # three voices named by a stranger; two of them are held out below
        k = int(r[dataset.SPEAKER][3:])
        if k < len(HOSTILE):
            r[dataset.SPEAKER] = HOSTILE[k]
    table = dataset.to_table(rows)
    gen = from_dict(TrainConfig, {"data": {"train": "data/hf", "val_speakers": 0},
                                  "model": {"init": "tiny"}, "trainer": {"max_steps": 400}})
    recipe = types.SimpleNamespace(name=NAME, generator=gen, eval=types.SimpleNamespace(
        dataset=types.SimpleNamespace(speakers=HOSTILE[:2] + ["spk5"])))
    cfg = from_dict(PlanConfig, {"min_minutes": 0.1, "resamples": 100, "speaker_counts": [2, 4],
                                 "targets": {HELDOUT: 2.9}})
    ts = subsets.training_set(table, recipe)
    drawn = subsets.draw(ts, cfg)
    full = ts.hours(ts.rows)
    rng = np.random.default_rng(0)
    offsets = {s: rng.normal(0, 0.05) for s in ts.held_out}
    records, pilots = {}, []
    for s in [None, *drawn]:
        name = s.name if s else "base"
        hours = s.hours if s else full / 64  # the base: as bad as a 64th of the data
        loss = _law(hours, full) + (0.1 if s and s.axis == subsets.VOICES else 0)  # fewer voices
        sums = {HELDOUT: {spk: [(loss + o) * 100, 100.0] for spk, o in offsets.items()}}
        records[name] = {"status": "done", "steps": 10 if s else 0, "train_seconds": 5.0,
                         "resumed": False, "machine": "test <cpu>", "sums": sums}
        pilots.append(Pilot(name, s.axis if s else "base", s.fraction if s else 0.0,
                            s.hours if s else 0.0, s.voices if s else 0,
                            len(s.rows) if s else 0, f"pilots/{name}", "data/hf", ts.held_out,
                            8, gen, None))
    records["hours-0.125"] = {"status": "failed", "reason": "out of memory <on> *gpu*"}
    plan = planning.assemble(recipe, cfg, table, ts, drawn, pilots, records, ["a note"])
    plan["seconds"] = 12.5
    out = tmp_path_factory.mktemp("plan")
    report.write(out, plan)
    return types.SimpleNamespace(plan=plan, out=out, full=full, ts=ts, drawn=drawn)


def test_the_curve_comes_from_the_done_hours_pilots_and_a_failed_one_is_reported(built):
    m = built.plan["metrics"][HELDOUT]
    assert [p["pilot"] for p in m["points"]] == ["hours-0.0625", "hours-0.25", "hours-0.5",
                                                  "hours-1"]  # hours-0.125 failed
    assert m["curve"]["kind"] == "power law"
    a, b, c = m["curve"]["params"]
    assert c == pytest.approx(0.5, abs=0.05) and a + b == pytest.approx(m["points"][-1]["value"], abs=0.02)
    row = next(p for p in built.plan["pilots"] if p["name"] == "hours-0.125")
    assert row["status"] == "failed" and row["reason"].startswith("out of memory")
    assert m["target"]["state"] == "needs" and m["target"]["hours"] > built.full
    assert m["voices"]["verdict"] == "better with more voices"


def test_the_cost_scales_the_pilots_seconds_per_step_to_the_predicted_hours(built):
    cost = built.plan["cost"]
    assert cost["seconds_per_step"] == pytest.approx(0.5)  # 5 s for 10 steps, every pilot
    per_hour = 400 / built.full  # the rule: the recipe's 400 steps over the whole set
    assert cost["steps_per_data_hour"] == pytest.approx(per_hour)
    assert cost["whole_set"] == pytest.approx(0.5 * 400 / 3600)
    assert cost["factors"]["10x"] == pytest.approx(10 * cost["whole_set"])
    need = built.plan["metrics"][HELDOUT]["target"]["hours"]
    assert cost["targets"][HELDOUT]["device_hours"] == pytest.approx(0.5 * per_hour * need / 3600)


def test_plan_md_answers_in_three_lines_on_top_and_states_how_far_it_reaches(built):
    text = (built.out / report.MARKDOWN).read_text()
    lines = text.splitlines()
    heads = ("1. **Hours.** ", "2. **Voices.** ", "3. **Cost.** ")
    assert all(line.startswith(head) for line, head in zip(lines[2:5], heads)), lines[:6]
    assert "extrapolated" in text and "Held-out check" in text and "- a note" in text
    assert "eval speaker(s)" not in text  # three held out
    assert "pilot hours-0.125 failed: out of memory &lt;on&gt; \\*gpu\\*" in text
    assert json.loads((built.out / report.JSON).read_text())["answer"] == built.plan["answer"]


def test_names_from_the_data_are_escaped_in_the_markdown_and_the_page(built):
    text = (built.out / report.MARKDOWN).read_text()
    page = (built.out / report.PAGE).read_text()
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img src=x" not in text and "\\*x\\*\\|\\`y\\`" in text
    for payload in ("<script>alert", "<img src=x", 'href="javascript'):
        assert payload not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_page_shows_one_picture_per_metric_carrying_the_measured_points(built):
    from PIL import Image

    from kani_adapt.pages.plots import POINT_COLOUR

    page = (built.out / report.PAGE).read_text()
    for metric, m in built.plan["metrics"].items():
        assert f'src="curve_{metric}.png"' in page
        image = Image.open(built.out / f"curve_{metric}.png")
        drawn = json.loads(image.text["points"])
        assert [(d["x"], d["y"]) for d in drawn] == [(p["hours"], p["value"]) for p in m["points"]]
        pixels = np.asarray(image.convert("RGB"))
        colour = np.array([int(POINT_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
        for d in drawn:  # a marker of the points' colour where each point is said to be
            around = pixels[d["row"] - 2:d["row"] + 3, d["column"] - 2:d["column"] + 3]
            assert (np.abs(around.astype(int) - colour).sum(-1) < 40).any(), d
        rising = sorted(drawn, key=lambda d: d["x"])  # more hours: further right, lower loss
        assert [d["column"] for d in rising] == sorted(d["column"] for d in rising)
        assert all(math.isfinite(d["y"]) for d in drawn)


def test_too_few_eval_speakers_are_noted():
    assert planning.few_speakers(["a", "b"])[0].startswith("only 2 eval speaker(s)")
    assert planning.few_speakers(["a", "b", "c"]) == []


def test_the_answer_speaks_of_a_metric_the_pilots_moved():
    from kani_adapt.planning.answer import lead_metric

    curve = {"kind": "power law"}
    still = {"failure": {"curve": curve, "flags": ["no pilot moved failure from the base's 1"]},
             HELDOUT: {"curve": curve, "flags": []}}
    assert lead_metric({"metrics": still}) == HELDOUT
    still["failure"]["flags"] = []
    assert lead_metric({"metrics": still}) == "failure"  # a key metric of the verdict first
