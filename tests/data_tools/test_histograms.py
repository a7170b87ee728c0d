"""Report histograms: PNGs beside report.md and the Markdown that links them."""
from __future__ import annotations

import re

import numpy as np
import pytest

from data_tools.report.histograms import METRICS, speaking_rate, values_by_tag, write_histograms


def rows(n=200, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        out.append({"tag": "de_hessian" if i % 2 else "en", "cer": float(rng.uniform(0, 0.3)),
                    "dnsmos_ovrl": float(rng.normal(3.2, 0.3)), "duration": 4.0,
                    "text": "a" * int(rng.integers(40, 80))})
    return out


def links(lines):
    return [m.group(1) for line in lines for m in [re.fullmatch(r"!\[[^]]+\]\(([^)]+)\)", line)]
            if m]


def test_pngs_are_written_beside_the_report_and_linked(tmp_path):
    import matplotlib.image

    report = tmp_path / "report" / "report.md"
    lines = write_histograms(rows(), report)
    targets = links(lines)
    assert targets == ["hist_cer.png", "hist_dnsmos.png", "hist_speaking_rate.png"]
    for target in targets:
        path = report.parent / target
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5000
        image = matplotlib.image.imread(path)
        assert image.shape[0] >= 200 and image.shape[1] >= 400
        assert image[..., :3].std() > 0.05  # something is drawn, not a blank canvas
    assert not list(report.parent.glob("*.tmp*"))


def test_each_tag_is_drawn(tmp_path):
    import matplotlib.image

    one = write_histograms([r for r in rows() if r["tag"] == "en"], tmp_path / "a" / "report.md")
    two = write_histograms(rows(), tmp_path / "b" / "report.md")
    a = matplotlib.image.imread(tmp_path / "a" / links(one)[0])
    b = matplotlib.image.imread(tmp_path / "b" / links(two)[0])
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_empty_input_gives_a_no_data_line_not_a_crash(tmp_path):
    report = tmp_path / "report.md"
    (tmp_path / "hist_cer.png").write_bytes(b"old")  # from an earlier run
    lines = write_histograms([], report)
    assert len(lines) == len(METRICS)
    assert all("no data" in line and not line.startswith("![") for line in lines)
    assert not list(tmp_path.glob("*.png"))


def test_a_metric_nobody_measured_says_no_data_the_others_draw(tmp_path):
    data = [{k: v for k, v in r.items() if k != "dnsmos_ovrl"} for r in rows(20)]
    data[0]["cer"] = float("nan")
    lines = write_histograms(data, tmp_path / "report.md")
    assert links(lines) == ["hist_cer.png", "hist_speaking_rate.png"]
    assert "DNSMOS" in lines[1] and "no data" in lines[1]


@pytest.mark.parametrize("row,rate", [
    ({"text": "ab cd", "duration": 2.0}, 2.0),
    ({"text": "", "duration": 2.0}, None),
    ({"text": "abc", "duration": 0.0}, None),
])
def test_speaking_rate_counts_characters_without_spaces(row, rate):
    assert speaking_rate(row) == rate


def test_values_are_grouped_by_tag():
    groups = values_by_tag([{"tag": "en", "cer": 0.1}, {"tag": "", "cer": 0.2},
                            {"tag": "en", "cer": None}, {"tag": "en", "cer": float("nan")}],
                           METRICS[0])
    assert groups == {"(no tag)": [0.2], "en": [0.1]}
