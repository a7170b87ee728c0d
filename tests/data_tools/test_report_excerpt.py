"""The data report's players and pictures hold a bounded excerpt of each recording: a rejected
recording of minutes or hours costs the report what a clip costs (issue: a 2 h 50 min silent
recording made the write stage draw one 7 GB spectrogram, and `prepare` exited with nothing)."""
import json
import re
import tracemalloc

import numpy as np
import soundfile as sf

from data_tools.records import Utterance, manifest_path
from data_tools.report.page import EXCERPT_SECONDS, write_page

RATE = 22050
LONG_SECONDS = 300  # drawn whole, its spectrogram's arrays alone would take some 700 MB


def test_a_long_rejected_recording_is_shown_by_its_start_in_bounded_memory(tmp_path):
    work, out = tmp_path / "work", tmp_path / "dataset"
    (work / "ingest").mkdir(parents=True)
    out.mkdir()
    rng = np.random.default_rng(0)
    short = (0.1 * rng.standard_normal(3 * RATE)).astype(np.float32)
    sf.write(work / "ingest" / "short.wav", short, RATE, subtype="PCM_16")
    with sf.SoundFile(work / "ingest" / "long.wav", "w", RATE, 1, subtype="PCM_16") as f:
        for _ in range(LONG_SECONDS // 10):  # written in pieces: the test itself stays small
            f.write(np.zeros(10 * RATE, np.float32))
    kept = Utterance("src/short", "ingest/short.wav", "a short clip", "anna", "en", 3.0)
    long = Utterance("src/long", "ingest/long.wav", "", "anna", "en", float(LONG_SECONDS))
    manifest_path(work, "ingest").write_text(
        "".join(json.dumps(u.to_dict()) + "\n" for u in (kept, long)))
    rejected = [{"id": long.id, "stage": "segment", "reason": "no_speech", "detail": "silent"}]

    tracemalloc.start()
    try:
        page = write_page(out, "# Report", [kept], rejected, work, ["ingest"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150 * 2 ** 20, f"{peak / 2 ** 20:.0f} MB"  # a 30 s excerpt needs about 70 MB

    text = page.read_text()
    shown = {_stem(s): s for s in re.findall(r'src="(report_audio/[^"]+\.wav)"', text)}
    assert set(shown) == {"kept_0000", "rejected_0000"}
    excerpt = sf.info(str(out / shown["rejected_0000"]))
    assert excerpt.duration == EXCERPT_SECONDS
    assert f"the first {EXCERPT_SECONDS:g} s of {LONG_SECONDS} s" in text
    assert (out / "report_audio" / "rejected_0000.png").stat().st_size > 0
    # a clip shorter than the excerpt plays whole, sample for sample, with no note
    played, rate = sf.read(out / shown["kept_0000"], dtype="int16")
    assert rate == RATE and np.array_equal(played, sf.read(work / "ingest" / "short.wav",
                                                           dtype="int16")[0])
    assert text.count("the first ") == 1


def _stem(src: str) -> str:
    return src.rsplit("/", 1)[-1].removesuffix(".wav")
