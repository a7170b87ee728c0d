import numpy as np
import pytest

from data_tools.stages import segment
from data_tools.inputs.layouts import SourceConfig
from data_tools.stages.ingest import IngestConfig
from data_tools.stages.segment import SegmentConfig
from data_tools.records import Utterance, read_jsonl
from dt_helpers import SENTENCES, espeak, needs_espeak, run_stage, with_silence, write


def test_trim_keeps_padding_inside_the_clip():
    assert segment.trim([(1.0, 2.0), (3.0, 4.0)], 4.05, 0.1) == (0.9, 4.05)
    assert segment.trim([], 3.0, 0.1) is None


def test_cut_at_pauses_respects_the_range_and_cuts_only_in_pauses():
    cfg = SegmentConfig(min_seconds=2.0, max_seconds=10.0, pad_seconds=0.1)
    spans = [(i * 3.0, i * 3.0 + 2.5) for i in range(10)]  # 2.5 s speech, 0.5 s pauses
    pieces = segment.cut_at_pauses(spans, 30.0, cfg)
    assert all(2.0 <= e - s <= 10.0 for s, e in pieces)
    for s, e in pieces:  # every cut lies in a pause: a span is wholly inside a piece or outside
        for a, b in spans:
            assert b <= s or a >= e or (s <= a and b <= e)
    covered = sum(min(e, b) - max(s, a) for s, e in pieces for a, b in spans if min(e, b) > max(s, a))
    assert covered == pytest.approx(sum(b - a for a, b in spans))  # no speech lost


def test_unbroken_speech_is_cut_hard_and_short_scraps_dropped():
    cfg = SegmentConfig(min_seconds=2.0, max_seconds=10.0, pad_seconds=0.0)
    pieces = segment.cut_at_pauses([(0.0, 20.0), (25.5, 26.0)], 27.0, cfg)
    assert pieces == [(0.0, 10.0), (10.0, 20.0)]  # the lone 0.5 s scrap is dropped


def test_plan_keeps_long_transcribed_clips_whole_for_alignment():
    cfg = SegmentConfig(max_seconds=10.0)
    spans = [(0.5, 8.0), (9.0, 17.0)]
    long_text = Utterance("a", "x.wav", "some text", "s", duration=18.0)
    no_text = Utterance("b", "x.wav", "", "s", duration=18.0)
    assert segment.plan(long_text, spans, cfg) == [("", (0.35, 17.15))]
    assert [s for s, _ in segment.plan(no_text, spans, cfg)] == ["#seg000", "#seg001"]
    assert segment.plan(long_text, [], cfg) == "no_speech"


@needs_espeak
def test_segment_stage_trims_silence_with_silero_and_rejects_silent_clips(tmp_path):
    root, work = tmp_path / "in", tmp_path / "work"
    speech, sr = espeak(SENTENCES[2])
    write(root / "s" / "padded.wav", with_silence(speech, sr, 1.5, 2.0), sr, SENTENCES[2])
    rng = np.random.default_rng(0)
    write(root / "s" / "hiss.wav", (rng.standard_normal(sr * 3) * 1e-3).astype(np.float32), sr,
          "nothing said")
    utts = run_stage("ingest", work, ingest=IngestConfig(sources=[SourceConfig(path=str(root))]))
    kept = run_stage("segment", work, utts, budget=1.0)
    assert [u.id for u in kept] == ["in/s/padded"]
    assert kept[0].duration < utts[1].duration - 2.5  # most of the 3.5 s of padding went
    assert kept[0].duration > len(speech) / sr - 0.3  # and no speech was cut
    assert [r["reason"] for r in read_jsonl(work / "rejected.jsonl")] == ["no_speech"]
