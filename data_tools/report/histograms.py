"""Histograms for the data report: CER, DNSMOS, speaking rate and estimated SNR per tag, as PNGs
beside ``report.md``, with the Markdown that shows them (and the SNR spread in numbers).

Drawn on a bare matplotlib ``Figure`` with the Agg canvas: no pyplot global state, no display
needed. matplotlib is imported only when a picture is drawn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from kani_adapt.core.atomic import write_file
from kani_adapt.dataset import DURATION, TAG, TEXT
from kani_adapt.core.untrusted import md


def speaking_rate(row: dict) -> float | None:
    """Characters per second, spaces not counted (they are not spoken)."""
    duration = row.get(DURATION) or 0.0
    text = row.get(TEXT) or ""
    return len("".join(text.split())) / duration if duration > 0 and text else None


@dataclass(frozen=True)
class Metric:
    name: str  # file name part: hist_<name>.png
    title: str
    unit: str
    value: Callable[[dict], float | None]  # from one kept clip's row; None: not measured


METRICS = (
    Metric("cer", "Transcript CER (given vs ASR)", "CER", lambda r: r.get("cer")),
    Metric("dnsmos", "DNSMOS overall", "OVRL (1-5)",
           lambda r: r.get("dnsmos_ovrl", r.get("dnsmos"))),
    Metric("speaking_rate", "Speaking rate", "characters per second", speaking_rate),
    Metric("snr", "Estimated SNR", "dB", lambda r: r.get("snr_db")),
)


def spread_lines(rows: Sequence[dict], metric: Metric) -> list[str]:
    """One line per tag: 10th percentile, median and 90th percentile of ``metric``."""
    import numpy as np

    out = []
    for tag, values in values_by_tag(rows, metric).items():
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        out.append(f"- {metric.title}, {md(tag)}: 10 % of clips below {p10:.1f} {metric.unit}, "
                   f"median {p50:.1f}, 90 % below {p90:.1f} ({len(values)} clips)")
    return out


def values_by_tag(rows: Sequence[dict], metric: Metric) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for row in rows:
        value = metric.value(row)
        if value is None or not math.isfinite(float(value)):
            continue
        out.setdefault(row.get(TAG) or "(no tag)", []).append(float(value))
    return dict(sorted(out.items()))


def draw_histogram(groups: dict[str, list[float]], path: Path, title: str, xlabel: str,
                   bins: int = 30) -> Path:
    """One PNG: a histogram per tag on shared bins; written atomically."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    every = np.concatenate([np.asarray(v) for v in groups.values()])
    lo, hi = float(every.min()), float(every.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    fig = Figure(figsize=(7, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for tag, values in groups.items():
        ax.hist(values, bins=edges, alpha=0.6 if len(groups) > 1 else 0.9,
                label=f"{tag} (n={len(values)}, median {np.median(values):.3g})")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("clips")
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    return write_file(path, lambda tmp: fig.savefig(tmp, format="png"))


def write_histograms(rows: Sequence[dict], report_md: Path,
                     metrics: Sequence[Metric] = METRICS) -> list[str]:
    """Draw each metric's histogram beside ``report_md``; one Markdown line per metric (an image
    link, or a "no data" line where no clip has the value)."""
    folder = Path(report_md).parent
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for metric in metrics:
        path = folder / f"hist_{metric.name}.png"
        groups = values_by_tag(rows, metric)
        if not groups:
            path.unlink(missing_ok=True)  # a picture from an earlier run would mislead
            lines.append(f"*{metric.title}: no data (no kept clip has a value).*")
            continue
        draw_histogram(groups, path, metric.title, metric.unit)
        lines.append(f"![{metric.title}]({path.name})")
        if metric.name == "snr":  # the spread in numbers, beside the picture
            lines += spread_lines(rows, metric)
    return lines
