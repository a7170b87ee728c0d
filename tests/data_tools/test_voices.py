"""One voice per utterance when long recordings are cut: windows embedded, changes placed,
pieces that span a change or lie where another voice speaks rejected with their reason.

The recording is tones with pauses (A at 200 Hz, B at 500 Hz, then A again) and the embedder
a stand-in that maps a window's pitch to a direction: what matters here is what the tools do
with embeddings, which the real speaker embedder provides for real voices."""
from __future__ import annotations

import numpy as np
import pytest

from data_tools.speech import voices
from kani_adapt.audio import write_clip
from data_tools.stages.segment import SegmentConfig
from data_tools.records import Utterance, read_jsonl
from dt_helpers import run_stage

RATE = 16000
# (start_s, end_s, Hz) of each stretch of one voice; 0.6 s pauses every 3 s inside each
PLAN = ((0.0, 16.0, 200), (16.0, 26.0, 500), (26.0, 36.0, 200))


def recording() -> np.ndarray:
    t = np.arange(int(PLAN[-1][1] * RATE)) / RATE
    audio = np.zeros_like(t, dtype=np.float32)
    for start, end, hz in PLAN:
        on = (t >= start) & (t < end) & (((t - start) % 3.6) < 3.0)
        audio[on] = 0.3 * np.sin(2 * np.pi * hz * t[on])
    return audio


class PitchEmbedder:
    """A window's strongest frequency as a direction: one pitch, one voice."""

    def __init__(self):
        self.calls = 0

    def embed(self, clips, rate):
        self.calls += 1
        rng = np.random.default_rng(0)
        rows = []
        for clip in clips:
            hz = np.argmax(np.abs(np.fft.rfft(clip))) * rate / len(clip)
            v = np.zeros(8)
            v[0], v[1] = np.cos(hz / 100), np.sin(hz / 100)
            rows.append(v + rng.normal(0, 0.02, 8))
        return np.array(rows)


def energy_vad(audio16k: np.ndarray):
    """Speech spans: 10 ms frames above a level (the tones), merged."""
    frames = np.abs(audio16k[: len(audio16k) // 160 * 160]).reshape(-1, 160).max(axis=1) > 0.05
    spans, start = [], None
    for i, on in enumerate(np.append(frames, False)):
        if on and start is None:
            start = i
        elif not on and start is not None:
            spans.append((start / 100, i / 100))
            start = None
    return spans


def test_changes_are_placed_and_a_returning_voice_is_the_main_one():
    found = voices.find_voices(recording(), RATE, PitchEmbedder())
    assert [round(c.time_s) for c in found.changes] == [16, 26]
    assert all(abs(c.time_s - t) <= 1.0 for c, t in zip(found.changes, (16.0, 26.0)))
    assert [s.main for s in found.stretches] == [True, False, True]
    assert found.judge(1.0, 8.0) is None and found.judge(27.0, 35.0) is None
    assert found.judge(12.0, 19.0)[0] == "voice_change"
    code, detail = found.judge(18.0, 24.0)
    assert code == "other_voice" and "another voice" in detail


def test_one_voice_throughout_has_no_change():
    audio = recording()
    audio[int(16 * RATE): int(26 * RATE)] *= 0  # B silent: A, a long pause, A
    found = voices.find_voices(audio, RATE, PitchEmbedder(), speech=energy_vad(audio))
    assert found.changes == [] and found.judge(0.0, 36.0) is None
    # without the VAD's spans the silent windows look like a voice of their own
    assert voices.find_voices(audio, RATE, PitchEmbedder()).changes


@pytest.fixture
def long_recording(tmp_path):
    work = tmp_path / "work"
    write_clip(work / "ingest" / "clips" / "talk.wav", recording(), RATE)
    utt = Utterance("rec/anna/talk", "ingest/clips/talk.wav", "", "anna", duration=36.0,
                    source="talk.wav")
    return work, utt


def test_segment_keeps_only_pieces_of_the_main_voice_and_says_why_it_dropped_the_rest(long_recording):
    work, utt = long_recording
    embedder = PitchEmbedder()
    cfg = SegmentConfig(max_seconds=8.0, min_seconds=2.0)
    kept = run_stage("segment", work, [utt], budget=1.0, segment=cfg,
                     given={"vad": energy_vad, "embedder": embedder})
    assert embedder.calls == 1  # the whole recording once, not once per piece
    spans = [(u.start, u.start + u.duration) for u in kept]
    assert spans and all(e <= 16.0 or s >= 26.0 for s, e in spans), spans  # none of B's time
    assert any(s >= 26.0 for s, _ in spans)  # A's return is kept
    # cut at the changes, not rejected across them: nearly all of A's 23 s of sound is kept
    assert sum(e - s for s, e in spans) > 20.0
    rejected = list(read_jsonl(work / "rejected.jsonl"))
    assert [r["reason"] for r in rejected] == ["other_voice"], rejected  # B, with its reason
    assert rejected[0]["id"].startswith("rec/anna/talk#") and rejected[0]["seconds"] > 5.0
    assert "another voice" in rejected[0]["detail"]
    assert rejected[0]["part"]  # a piece of a kept recording, not a whole item


def test_voice_checks_can_be_switched_off(long_recording):
    work, utt = long_recording
    embedder = PitchEmbedder()
    cfg = SegmentConfig(max_seconds=8.0, min_seconds=2.0, voice_changes="off")
    kept = run_stage("segment", work, [utt], budget=1.0, segment=cfg,
                     given={"vad": energy_vad, "embedder": embedder})
    assert embedder.calls == 0 and len(kept) >= 4
    assert not list(read_jsonl(work / "rejected.jsonl"))


def test_auto_without_an_embedder_on_this_machine_cuts_as_before(long_recording, tmp_path):
    from data_tools.config import DataConfig
    from data_tools.stages.embed import EmbedConfig

    work, utt = long_recording
    assert not voices.wanted(DataConfig(embed=EmbedConfig(model=str(tmp_path / "absent"))))
    kept = run_stage("segment", work, [utt], budget=1.0,
                     segment=SegmentConfig(max_seconds=8.0, min_seconds=2.0),
                     embed=EmbedConfig(model=str(tmp_path / "absent")), given={"vad": energy_vad})
    assert len(kept) >= 4
