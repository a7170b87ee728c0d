"""One learning-curve picture per metric, beside the plan's page (``curve_<metric>.png``): the
pilots' figures with their intervals, the fitted curve with its band, the target, the
recordings' figure and the base's."""
from __future__ import annotations

import math
from pathlib import Path


def file_name(metric: str) -> str:
    return f"curve_{metric}.png"


def draw(folder: Path, metric: str, m: dict) -> Path:
    from kani_adapt.pages.plots import CurvePicture, curve_png

    points = [(p["hours"], p["value"], _or(p["low"], p["value"]), _or(p["high"], p["value"]))
              for p in m["points"] if math.isfinite(p["value"])]
    band = m.get("band") or {}
    lines = []
    if m.get("target"):
        lines.append((m["target"]["value"], f"target ({m['target']['rule']})"))
    if m.get("recordings") and math.isfinite(m["recordings"]["value"]):
        lines.append((m["recordings"]["value"], "recordings (the eval speakers' own)"))
    if m.get("base") and math.isfinite(m["base"]["value"]):
        lines.append((m["base"]["value"], "base (untrained)"))
    better = "higher" if m["higher_is_better"] else "lower"
    picture = CurvePicture(
        title=f"{metric} ({better} is better), {m['curve']['kind']}",
        xlabel="hours of training speech (log)", ylabel=metric, points=points,
        curve=(band["hours"], band["fit"]) if band else None,
        band=(band["hours"], band["low"], band["high"]) if band else None, lines=lines,
        point_label="pilots (95 % interval over eval speakers)")
    path = Path(folder) / file_name(metric)
    curve_png(picture, path)
    return path


def _or(value: float, fallback: float) -> float:
    return value if value is not None and math.isfinite(value) else fallback
