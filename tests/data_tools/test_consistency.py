"""Speaker consistency on injected embeddings: outlier clips and voice changes."""
from __future__ import annotations

import numpy as np
import pytest

from data_tools.speech.consistency import (ChangePoint, ConsistencyConfig,
                                    robust_centroid, sliding_windows, speaker_outliers,
                                    unit_rows, voice_changes)

DIM = 128


def voice(rng) -> np.ndarray:
    v = rng.standard_normal(DIM)
    return v / np.linalg.norm(v)


def clips(rng, centre, n, noise=0.35) -> np.ndarray:
    """Embeddings scattered around one voice (cosine to it ~0.9, like one real speaker)."""
    return centre + noise * rng.standard_normal((n, DIM)) / np.sqrt(DIM)


def test_clip_of_another_speaker_is_flagged_with_numbers():
    rng = np.random.default_rng(0)
    a, b = voice(rng), voice(rng)
    emb = np.vstack([clips(rng, a, 20), clips(rng, b, 15), clips(rng, b, 1)])
    speakers = ["anna"] * 20 + ["ben"] * 15 + ["anna"]  # the last clip is Ben's, mislabelled
    flagged = speaker_outliers(emb, speakers)
    assert [(o.index, o.speaker, o.code) for o in flagged] == [(35, "anna", "speaker_outlier")]
    assert flagged[0].cosine < flagged[0].threshold
    assert "anna's centroid" in flagged[0].detail and "21 clips" in flagged[0].detail


def test_several_mislabelled_clips_do_not_hide_each_other():
    # a quarter of "anna" is Ben: a plain mean would sit between the voices and hide them
    rng = np.random.default_rng(4)
    a, b = voice(rng), voice(rng)
    emb = np.vstack([clips(rng, a, 15), clips(rng, b, 5)])
    flagged = speaker_outliers(emb, ["anna"] * 20)
    assert [o.index for o in flagged] == [15, 16, 17, 18, 19]


def test_centroid_follows_the_majority_voice_not_the_mislabelled_clips():
    rng = np.random.default_rng(5)
    a, b = voice(rng), voice(rng)
    centroid = robust_centroid(unit_rows(np.vstack([clips(rng, a, 15), clips(rng, b, 5)])))
    assert centroid @ a > 0.97 and abs(centroid @ b) < 0.15  # the plain mean: 0.94 and 0.24


def test_consistent_speakers_are_not_flagged():
    rng = np.random.default_rng(1)
    for _ in range(5):
        a, b = voice(rng), voice(rng)
        emb = np.vstack([clips(rng, a, 30), clips(rng, b, 30)])
        assert speaker_outliers(emb, ["a"] * 30 + ["b"] * 30) == []


def test_near_identical_clips_do_not_flag_tiny_differences():
    rng = np.random.default_rng(2)
    centre = voice(rng)
    emb = np.vstack([clips(rng, centre, 12, noise=1e-4), clips(rng, centre, 1, noise=0.1)])
    assert speaker_outliers(emb, ["x"] * 13) == []  # cosine ~0.995 is the same voice


def test_few_clips_use_only_the_floor():
    rng = np.random.default_rng(3)
    a, b = voice(rng), voice(rng)
    emb = np.vstack([clips(rng, a, 2), clips(rng, b, 1)])
    assert speaker_outliers(emb, ["s"] * 3) == []  # no statistics on 3 clips, floor off
    flagged = speaker_outliers(emb, ["s"] * 3, ConsistencyConfig(min_cosine=0.5))
    assert [o.index for o in flagged] == [2]


def test_mismatched_labels_are_refused():
    with pytest.raises(ValueError, match="3 embeddings but 2 speaker labels"):
        speaker_outliers(np.ones((3, 4)), ["a", "b"])


def windows(rng, change_s: float | None, total_s=60.0, length=3.0, hop=1.0):
    """Sliding-window embeddings of a recording whose voice changes from A to B at change_s:
    each window mixes the two voices by how much of it each one fills, plus noise."""
    a, b = voice(rng), voice(rng)
    spans, emb = [], []
    for start in np.arange(0.0, total_s - length + 1e-9, hop):
        end = start + length
        share_b = 0.0 if change_s is None else min(max((end - change_s) / length, 0.0), 1.0)
        emb.append((1 - share_b) * a + share_b * b + 0.35 * rng.standard_normal(DIM) / np.sqrt(DIM))
        spans.append((float(start), float(end)))
    return np.array(emb), spans


@pytest.mark.parametrize("change_s", [17.0, 33.5, 45.2])
def test_one_voice_change_is_found_at_the_right_place(change_s):
    rng = np.random.default_rng(int(change_s))
    emb, spans = windows(rng, change_s)
    changes = voice_changes(emb, spans)
    assert len(changes) == 1
    assert abs(changes[0].time_s - change_s) <= 1.0  # one hop
    assert changes[0].lo_s <= changes[0].hi_s
    assert changes[0].cosine < changes[0].threshold


def test_no_voice_change_gives_none():
    for seed in range(5):
        emb, spans = windows(np.random.default_rng(100 + seed), None)
        assert voice_changes(emb, spans) == []


def test_a_single_odd_window_is_not_a_change():
    rng = np.random.default_rng(7)
    emb, spans = windows(rng, None)
    emb[20] = voice(rng)  # a cough, a laugh: one window unlike the rest
    assert voice_changes(emb, spans) == []


@pytest.mark.parametrize("duration", [2.0, 10.0, 10.5, 61.3])
def test_sliding_windows_cover_the_whole_recording(duration):
    spans = sliding_windows(duration, length_s=3.0, hop_s=1.0)
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(duration)
    assert all(b - a == pytest.approx(min(3.0, duration)) for a, b in spans)
    assert all(0 < s2[0] - s1[0] <= 1.0 + 1e-9 for s1, s2 in zip(spans, spans[1:]))


def test_cut_spanning_a_voice_change_is_rejected_others_kept():
    from data_tools.speech.longform import Cut, CutPlan, CutRejection, texts_in_order
    from data_tools.speech.voices import Stretch, Voices, one_voice_cuts

    cuts = [Cut(0.0, 5.0, "one.", [], 0.0, ""), Cut(5.5, 11.0, "two.", [], 0.0, ""),
            Cut(12.0, 18.0, "four.", [], 0.0, "")]
    plan = CutPlan(cuts, [CutRejection(11.0, 12.0, "too_short", "", "three.")])
    change = ChangePoint(window=8, time_s=8.2, lo_s=8.0, hi_s=9.0, cosine=0.1, threshold=0.6)
    found = Voices([change], [Stretch(0.0, 8.2, True, 1.0), Stretch(8.2, 18.0, True, 0.9)], 0.6)
    out = one_voice_cuts(plan, found)
    assert [c.text for c in out.cuts] == ["one.", "four."]
    assert [(r.code, r.text) for r in out.rejections] == [("voice_change", "two."),
                                                          ("too_short", "three.")]
    assert "8.2 s" in out.rejections[0].detail
    assert texts_in_order(out) == "one. two. three. four."
    assert one_voice_cuts(plan, None).cuts == cuts


def test_a_cut_spanning_a_voice_change_is_split_there_and_keeps_every_word():
    from data_tools.speech.longform import Cut, CutPlan, texts_in_order
    from data_tools.speech.textalign import TimedWord
    from data_tools.speech.voices import Stretch, Voices, one_voice_cuts

    # one word a second from 0 to 12 s; the voice changes at ~6.5 s (somewhere in 6-7 s)
    words = [TimedWord(f"w{i}", i + 0.1, i + 0.8) for i in range(12)]
    cut = Cut(0.0, 12.0, " ".join(w.text for w in words), words, 0.0, "start: recording_start")
    change = ChangePoint(window=6, time_s=6.5, lo_s=6.0, hi_s=7.0, cosine=0.1, threshold=0.6)
    main = Voices([change], [Stretch(0.0, 6.0, True, 1.0), Stretch(7.0, 12.0, True, 0.95)], 0.6)
    out = one_voice_cuts(CutPlan([cut]), main, min_seconds=2.0, pad_seconds=0.15)
    assert [(c.start_s, round(c.end_s, 2), c.text) for c in out.cuts] == [
        (0.0, 5.95, "w0 w1 w2 w3 w4 w5"), (7.0, 12.0, "w7 w8 w9 w10 w11")]
    assert [(r.code, r.text) for r in out.rejections] == [("voice_change", "w6")]
    assert texts_in_order(out) == cut.text  # nothing lost
    assert all("split at a voice change" in c.moved_why for c in out.cuts)

    other = Voices([change], [Stretch(0.0, 6.0, True, 1.0), Stretch(7.0, 12.0, False, 0.1)], 0.6)
    out = one_voice_cuts(CutPlan([cut]), other, min_seconds=2.0, pad_seconds=0.15)
    assert [c.text for c in out.cuts] == ["w0 w1 w2 w3 w4 w5"]
    assert [r.code for r in out.rejections] == ["voice_change", "other_voice"]
    assert texts_in_order(out) == cut.text

    short = one_voice_cuts(CutPlan([cut]), main, min_seconds=5.5, pad_seconds=0.15)
    assert [c.text for c in short.cuts] == ["w0 w1 w2 w3 w4 w5"]  # 5.95 s kept, 5 s too short
    assert [r.code for r in short.rejections] == ["voice_change", "too_short"]
