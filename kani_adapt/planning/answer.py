"""The three lines on top of the plan: hours, voices, cost (with how far they reach)."""
from __future__ import annotations

import math

from kani_adapt.core.untrusted import md
from kani_adapt.planning.metrics import HELDOUT
from kani_adapt.planning.wording import num, ranged, target_line


def lead_metric(plan: dict) -> str:
    """The metric the answer speaks of: the first with a target, else the first of the
    scorers' key metrics with a curve that some pilot moved from the base, else the held-out
    loss."""
    from kani_adapt.scorers.registry import headline

    metrics = plan["metrics"]
    for name, m in metrics.items():
        if m.get("target"):
            return name
    for name in headline():
        m = metrics.get(name)
        if m and m["curve"]["kind"] != "none" and not any(
                f.startswith("no pilot moved") for f in m["flags"]):
            return name
    return HELDOUT if HELDOUT in metrics else next(iter(metrics), HELDOUT)


def answer(plan: dict) -> list[str]:
    lead = lead_metric(plan)
    m = plan["metrics"].get(lead)
    if m is None:
        return ["**Hours.** No pilot finished, so nothing was measured (the pilots' table says "
                "why).", "**Voices.** Nothing measured.", "**Cost.** Nothing measured."]
    whole = m["points"][-1]
    far = m["predictions"][-1]
    hours = (f"**Hours.** With the whole training set ({num(plan['training_hours'] * 60)} min, "
             f"{plan['training_voices']} voices) {lead} is {ranged(whole)}; ")
    if m["curve"]["kind"] == "none":
        hours += f"no curve: {md(m['curve']['reason'])}."
    else:
        hours += (f"the {m['curve']['kind']} predicts {ranged(far)} at {far['factor']}x the data. "
                  f"Target {target_line(m)}.")
    return [hours, _voices(plan, lead), _cost(plan, lead)]


def _voices(plan: dict, lead: str) -> str:
    axes = {k: m["voices"] for k, m in plan["metrics"].items() if m.get("voices")}
    if lead not in axes:
        return ("**Voices.** Not measured: the voices axis needs at least 2 training voices "
                "holding the speaker fraction's hours (plan.speaker_counts).")
    v = axes[lead]
    moved = [k for k, a in axes.items() if not a["verdict"].startswith("no clear")]
    return (f"**Voices.** At equal hours, going from {v['diff']['from']} to {v['diff']['to']} "
            f"voices, {lead} is {v['verdict']} (change {ranged(v['diff'])}); "
            f"{len(moved)} of {len(axes)} metrics moved with more voices"
            + (f" ({', '.join(moved)})." if moved else "."))


def _cost(plan: dict, lead: str) -> str:
    cost = plan["cost"]
    check = plan["metrics"][lead].get("check") or {}
    honest = (f"held out, the largest pilot's {lead} was predicted within "
              f"{num(100 * check['relative_error'], 3)} % (error {num(check['error'])})"
              if check.get("kind") not in (None, "none") else "no held-out check (fewer than "
              "4 hours pilots fitted)")
    if "seconds_per_step" not in cost:
        return f"**Cost.** {md(cost['reason'])}; {honest}."
    where = ", ".join(str(md(m, line_start=False)) for m in cost["machines"])
    target = cost["targets"].get(lead)
    amount = (f"the {num(target['hours'] * 60)} min the target needs take about "
              f"{num(target['device_hours'], 3)} device-hours" if target and
              math.isfinite(target["device_hours"]) else
              f"10x the data takes about {num(cost['factors']['10x'], 3)} device-hours")
    return (f"**Cost.** On {where}, {amount} (the whole training set: "
            f"{num(cost['whole_set'], 3)}); {honest}; the 10x figures are extrapolated.")
