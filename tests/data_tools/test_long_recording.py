"""A 3-hour recording goes through ingest and segment under a 2 GiB memory cap (the whole
file as float32 would be 950 MB, and several copies of it used to be made)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
HOURS, RATE = 3.0, 16000
BURSTS = (600.0, 5400.0, 10500.0)  # seconds where a 3 s sound sits in the silence

CAPPED = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
sys.path.insert(0, {helpers!r})
import numpy as np
from data_tools.inputs.layouts import SourceConfig
from data_tools.stages.ingest import IngestConfig
from dt_helpers import run_stage

def energy_vad(audio16k):  # stands in for silero-vad (its speed is not the point here)
    hop = 1600
    n = len(audio16k) // hop
    loud = np.sqrt((audio16k[: n * hop].reshape(n, hop) ** 2).mean(1)) > 0.01
    spans, start = [], None
    for i, on in enumerate(np.append(loud, False)):
        if on and start is None:
            start = i
        elif not on and start is not None:
            spans.append((start * hop / 16000, i * hop / 16000)); start = None
    return spans

kept = run_stage("ingest", {work!r}, ingest=IngestConfig(sources=[SourceConfig(path={rec!r})]))
import dataclasses
untranscribed = [dataclasses.replace(u, text="") for u in kept]  # as transcribe would see it
pieces = run_stage("segment", {work!r}, inputs=untranscribed, given={{"vad": energy_vad}})
# VmHWM: this image's own peak (ru_maxrss keeps the high-water mark of the forked test
# process across exec, so it reports the size of pytest, not of this script)
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({{"ingested": [u.duration for u in kept], "pieces": [[p.start, p.duration]
                  for p in pieces], "peak": peak}}))
"""


def _write_long(path: Path) -> None:
    rng = np.random.default_rng(0)
    block = 600 * RATE
    with sf.SoundFile(str(path), "w", RATE, 1, "PCM_16") as f:
        for start in range(0, int(HOURS * 3600 * RATE), block):
            audio = (rng.standard_normal(block) * 1e-4).astype(np.float32)
            for at in BURSTS:
                lo = int(at * RATE) - start
                if 0 <= lo < block:
                    t = np.arange(3 * RATE) / RATE
                    audio[lo:lo + 3 * RATE] = 0.3 * np.sin(2 * np.pi * 300 * t)
            f.write(audio)


@pytest.mark.slow
def test_a_three_hour_recording_is_segmented_under_a_2_gib_cap(tmp_path):
    rec, work = tmp_path / "rec", tmp_path / "work"
    rec.mkdir()
    _write_long(rec / "night.wav")
    (rec / "night.txt").write_text("a night of recording")
    script = CAPPED.format(helpers=str(Path(__file__).parent), work=str(work), rec=str(rec))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=1200, cwd=ROOT, env={"PYTHONPATH": str(ROOT),
                                                       "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ingested"] == [pytest.approx(HOURS * 3600, abs=0.1)]
    starts = [start for start, _ in result["pieces"]]
    assert len(starts) == len(BURSTS), result
    for start, at in zip(starts, BURSTS):  # each piece where its sound is, padded a little
        assert at - 0.5 < start <= at
    assert result["peak"] < 2 << 30
