"""How the plan writes a figure, a figure with its interval, and a target's outcome."""
from __future__ import annotations

import math

from kani_adapt.core.untrusted import md


def num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "never"
    return f"{value:.{digits}g}"


def ranged(d: dict | None, key: str = "value") -> str:
    if not d or d.get(key) is None:
        return "n/a"
    return f"{num(d[key])} [{num(d.get('low'))}, {num(d.get('high'))}]"


def target_line(m: dict) -> str:
    t = m.get("target")
    if not t:
        return "none set (plan.targets.<metric>=VALUE sets one)"
    head = f"{num(t['value'])} ({md(t['rule'])})"
    state = t.get("state")
    if state == "met":
        return f"{head}: already met by the whole training set"
    if state == "needs":
        return (f"{head}: needs {num(t['hours'] * 60)} min [{num(t['low'] * 60)}, "
                f"{num(t['high'] * 60)}] of such speech ({num(100 * t['unreachable_share'], 3)} % "
                "of draws never reach it)")
    if state == "unreachable":
        return (f"{head}: not reachable by hours alone (the curve flattens at "
                f"{num(t.get('flattens_at'))}, or does not improve with hours)")
    return f"{head}: unknown ({md(t.get('reason', ''))})"
