"""benchmarks/gpu_check.sh, the prepared GPU run, works before a GPU is lent: its --dry-run
goes through the same sequence on the CPU with tiny sizes, and every benchmark script is in it
(a benchmark that no longer runs fails here)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_dry_run_runs_every_step_and_every_benchmark(tmp_path):
    out = tmp_path / "gpu_check"
    env = {**os.environ, "KANI_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run",
                           "--out", str(out), "--budget", "600"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    summary = [line.split("\t") for line in (out / "summary.tsv").read_text().splitlines()]
    failed = {name: (result, (out / f"{name}.log").read_text()[-1500:])
              for name, result, _, _ in summary if result != "ok"}
    assert done.returncode == 0 and not failed, (done.stdout[-2000:], failed)
    scripts = {p.name for p in (ROOT / "benchmarks").glob("*.py")}
    ran = {Path(word).name for *_, command in summary for word in command.split()}
    assert scripts <= ran, f"benchmarks missing from gpu_check.sh: {sorted(scripts - ran)}"
    assert any("-m gpu" in command for *_, command in summary)
    rows = (out / "rows.md").read_text()
    assert rows.count("| date | machine | command | result | figures |") == len(summary)
    assert "CPU dry run" in rows
    for name, *_ in summary:  # each step's row carries what its log printed
        row = rows.split(f"## {name}\n")[1].split("\n## ")[0].strip().splitlines()[-1]
        assert row.endswith(" |") and "(none)" not in row, row
