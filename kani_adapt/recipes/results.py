"""The results table of recipes/README.md, written from a run's eval.json, never by hand.

The table sits between ``<!-- results:begin -->`` and ``<!-- results:end -->``; a recipe's row
(first cell: its name) is replaced, or appended when the recipe has none yet.
"""
from __future__ import annotations

import math
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from kani_adapt.core import atomic
from kani_adapt.core.errors import ConfigError
from kani_adapt.recipes.schema import README_BEGIN, README_END

HEADER = ("| recipe | machine | date | run time | data hours | steps | adapted (95 % intervals) | "
          "adapted - base | verdict |")
HEADLINE = ("cer", "similarity", "dnsmos_p808", "failure")  # shown when scored, in this order


def machine() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"{os.cpu_count()}-core {platform.machine()} CPU"


def _interval(i: dict | None) -> str | None:
    """"0.41 [0.38, 0.44]", or "0.41 (one speaker: no interval)"; None when not measured."""
    from kani_adapt.eval.stats import shown

    if not i or not i.get("n") or i.get("mean") is None or not math.isfinite(i["mean"]):
        return None
    return shown(i, 2)


def row(name: str, result: dict, stats: dict, steps: str, seconds: float, note: str = "",
        when: datetime | None = None) -> str:
    adapted = next(iter(result["checkpoints"]))
    summary = result["summary"][adapted]
    comparison = next(iter(result["comparisons"].values()), {"all": {}, "forgetting": {}})
    metrics = [m for m in HEADLINE if m in summary]
    levels = [f"{m} {v}" for m in metrics if (v := _interval(summary[m]["all"]))]
    diffs = [f"{m} {v}" for m in metrics if (v := _interval(comparison["all"].get(m, {}).get("diff")))]
    forgot = [f"{m} {v}" for m in metrics if (v := _interval(comparison["forgetting"].get(m, {}).get("diff")))]
    if forgot:
        diffs.append("base-language items: " + ", ".join(forgot))
    hours = stats.get("train_hours")
    data = f"{hours:.2f} h, {stats.get('train_speakers', '?')} speakers" if hours is not None else "?"
    verdict = result["verdicts"][0].split(": ", 1)[-1]
    verdict = f"{note} {verdict}".strip()
    date = (when or datetime.now(timezone.utc)).strftime("%Y-%m-%d")
    cells = [name, machine(), date, f"{seconds:.0f} s", data, steps, "; ".join(levels) or "n/a", "; ".join(diffs) or "n/a", verdict]
    return "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |"


def write_row(readme: Path, name: str, line: str) -> None:
    """Replace (or append) ``name``'s row of the table between the markers, atomically."""
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        raise ConfigError(f"{readme}: no results table between {README_BEGIN} and {README_END}; "
                          "add the markers around the table or set readme: '' in the recipe")
    head, rest = text.split(README_BEGIN, 1)
    table, tail = rest.split(README_END, 1)
    lines = [ln for ln in table.strip("\n").splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("| recipe |"):
        lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for i, existing in enumerate(lines[2:], start=2):
        if existing.split("|")[1].strip() == name:
            lines[i] = line
            break
    else:
        lines.append(line)
    atomic.write_text(readme, head + README_BEGIN + "\n" + "\n".join(lines) + "\n" + README_END + tail)


def run_table(work_dir: Path) -> Path:
    """``WORK_DIR/results.md``: the run's own results table (made with its markers when new), so
    a run never rewrites a tracked file unless asked (``readme=FILE``)."""
    path = Path(work_dir) / "results.md"
    if not path.is_file():
        atomic.write_text(path, f"# Results of this run\n\n{README_BEGIN}\n{README_END}\n")
    return path
