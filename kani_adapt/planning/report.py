"""The plan's report: plan.json (every figure), plan.md (a three-line answer on top, then how far
it reaches, the curves, the pilots, the subsets and the method) and plan.html (the same, through
the pages kit, with the pictures beside it). Names from the data are escaped
(``core.untrusted``)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from kani_adapt.core import atomic
from kani_adapt.core.untrusted import md, md_code, md_table
from kani_adapt.planning import pictures
from kani_adapt.planning.answer import answer, lead_metric
from kani_adapt.planning.wording import num, ranged, target_line

JSON, MARKDOWN, PAGE = "plan.json", "plan.md", "plan.html"


def write(out: Path, plan: dict) -> Path:
    from kani_adapt.pages.html import write_page

    out.mkdir(parents=True, exist_ok=True)
    plan["answer"] = answer(plan)
    atomic.write_json(out / JSON, plan)
    for metric, m in plan["metrics"].items():
        pictures.draw(out, metric, m)
    text = markdown(plan)
    atomic.write_text(out / MARKDOWN, text)
    write_page(out / PAGE, f"Data-budget plan: {plan['recipe']}", text, [])
    return out / PAGE


def markdown(plan: dict) -> str:
    lines = [f"# Data-budget plan: {md(plan['recipe'], line_start=False)}", ""]
    lines += [f"{k}. {line}" for k, line in enumerate(plan["answer"], 1)] + [""]
    lines += honesty(plan) + curves(plan) + pilots(plan) + diversity(plan) + method(plan)
    return "\n".join(lines) + "\n"


def honesty(plan: dict) -> list[str]:
    largest = max((p["hours"] for p in plan["pilots"] if p["axis"] == "hours"), default=0.0)
    out = ["## How far this reaches", "",
           f"- The pilots measured up to {num(largest * 60)} min of training speech; the "
           f"predictions at 2x, 4x and 10x reach {num(10 * largest * 60)} min, **extrapolated** "
           "beyond every pilot, and so is any target reached past the largest pilot.",
           "- Held-out check: each curve fitted again without the largest pilot, which it then "
           "predicts (its interval: the same fit on each draw of eval speakers; a flat guess, "
           "the next pilot's figure, beside it):", ""]
    rows = []
    for metric, m in plan["metrics"].items():
        c = m.get("check")
        if c and c.get("kind") != "none":
            rows.append([metric, c["kind"], f"{num(c['from_hours'] * 60)} min",
                         ranged({"value": c["predicted"], "low": c["low"], "high": c["high"]}),
                         num(c["measured"]), f"{num(c['error'])} ({num(100 * c['relative_error'], 3)} %)",
                         "yes" if c["inside"] else "no", num(c["flat_error"])])
        else:
            rows.append([metric, "none", "", "", "", (c or {}).get("reason", "fewer than 4 "
                                                                      "hours pilots"), "", ""])
    out += md_table(["metric", "fit", "fitted up to", "predicted", "measured", "error",
                     "inside interval", "flat guess error"], rows) + [""]
    out += [f"- {md(flag)}" for m in plan["metrics"].values() for flag in m["flags"]]
    out += [f"- {m['metric']}: {md(m['curve']['reason'])}" for m in plan["metrics"].values()
            if m["curve"]["reason"]]
    out += [f"- pilot {p['name']} failed: {md(p.get('reason', '?'))}" for p in
            [*plan["pilots"], plan["base"]] if p.get("status") != "done"]
    out += [f"- {md(note)}" for note in plan["notes"]]
    out += [f"- plan.targets names {md(t)}, which no pilot measured" for t in plan["unknown_targets"]]
    return out + [""]


def curves(plan: dict) -> list[str]:
    out = ["## Curves", ""]
    for metric, m in plan["metrics"].items():
        c = m["curve"]
        better = "higher" if m["higher_is_better"] else "lower"
        out += [f"### {metric} ({better} is better)", "",
                f"![{metric}: pilots, curve, target]({pictures.file_name(metric)})", "",
                f"- fit: {c['kind']}{_params(c)}; refitted on {m['draws_fitted']} draws of "
                "eval speakers"]
        for p in m["predictions"]:
            out.append(f"- at {p['factor']}x the data ({num(p['hours'] * 60)} min): "
                       f"{ranged(p)}")
        out.append(f"- target: {target_line(m)}")
        if m.get("voices"):
            v = m["voices"]
            out.append(f"- voices at equal hours, {v['diff']['from']} -> {v['diff']['to']}: "
                       f"{v['verdict']} (change {ranged(v['diff'])})")
        out.append("")
    return out


def _params(c: dict) -> str:
    if c["kind"] == "power law":
        a, b, k = c["params"]
        return (f" {num(a)} + {num(b)} * (hours / {num(c['scale'])})^-{num(k)}, flattening at "
                f"{num(a)}")
    if c["kind"] == "log-linear":
        a, b = c["params"]
        return f" {num(a)} + {num(b)} * ln(hours / {num(c['scale'])}), never flattening"
    return ""


def pilots(plan: dict) -> list[str]:
    lead = lead_metric(plan)
    rows = []
    for p in [plan["base"], *plan["pilots"]]:
        point = next((q for q in (plan["metrics"].get(lead) or {}).get("points", []) +
                      ((plan["metrics"].get(lead) or {}).get("voices") or {}).get("points", [])
                      if q["pilot"] == p["name"]), None)
        if p["name"] == "base" and lead in plan["metrics"]:
            point = plan["metrics"][lead]["base"]
        rows.append([p["name"], p["axis"], num(p["fraction"]), num(p["hours"] * 60),
                     p["voices"], p["clips"], p.get("steps", ""), num(p.get("train_seconds")),
                     p.get("status", "?") if p.get("status") == "done" else
                     f"failed: {p.get('reason', '?')}", ranged(point)])
    return ["## Pilots", ""] + md_table(
        ["pilot", "axis", "share", "minutes", "voices", "clips", "steps", "train s", "status",
         f"{lead} [95 %]"], rows) + [""]


def diversity(plan: dict) -> list[str]:
    def spread(v, scale=1.0):
        return "not measured" if not v else " / ".join(num(x * scale, 3) for x in v)

    rows = [[s["name"], s["voices"], s["clips"], num(s["hours"] * 60),
             spread(s["hours_per_voice"], 60), spread(s["snr_db"]),
             spread(s["chars_per_second"])] for s in plan["subsets"]]
    return ["## What each subset holds", ""] + md_table(
        ["subset", "voices", "clips", "minutes", "min per voice (least / median / most)",
         "SNR dB (10th / 90th pct)", "chars per s (10th / 90th pct)"], rows) + [""]


def method(plan: dict) -> list[str]:
    rule = plan["rule"]
    held = ", ".join(str(md(s, line_start=False)) for s in plan["held_out"])
    return ["## Method", "",
            f"- Data: {md_code(plan['dataset'])}, {num(plan['training_hours'] * 60)} min of "
            f"training speech from {plan['training_voices']} voices; held out (eval speakers, "
            f"in no subset): {held}. Subsets drawn with seed {plan['seed']}: each hours subset "
            "holds the one before it; the voices subsets hold the hours of one of them, spoken "
            "by the first voices of one seeded order.",
            f"- Steps: each pilot makes as many passes over its subset as the recipe's "
            f"{rule['recipe_steps']} steps make over the whole training set (x {rule['gpus']} "
            f"GPUs), at least {rule['min_steps']}; everything else is the recipe's.",
            f"- Intervals: 95 %, from {rule['resamples']} draws of the eval speakers with "
            "replacement, the same draws for every pilot and the base.",
            "- Curve: metric = a + b * (hours / H)^-c (c in [0.02, 4]) on 4 points or more; "
            "on 3, a log-linear line, metric = a + b * ln(hours / H); on fewer, none.",
            f"- Planner time: {num(plan.get('seconds', math.nan))} s.", ""]


def read(out: Path) -> dict:
    return json.loads((Path(out) / JSON).read_text(encoding="utf-8"))
