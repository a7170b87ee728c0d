"""Cutting long recordings from ASR word timings and VAD pauses (pure decisions)."""
from __future__ import annotations

import random

import pytest

from data_tools.speech.longform import CutConfig, pauses, plan_cuts, texts_in_order
from data_tools.speech.textalign import align_transcript, as_asr_words, transcript_tokens

WORD_S, WORD_GAP_S = 0.3, 0.04  # inside a sentence the VAD hears no pause


def recording(sentences: list[str], pause_s=lambda i: 0.6, lead_s: float = 0.5):
    """ASR words with times, VAD speech spans (one per sentence) and the sentence pauses."""
    words, spans, gaps, t = [], [], [], lead_s
    for i, sentence in enumerate(sentences):
        start = t
        for w in sentence.split():
            words.append((w, t, t + WORD_S, 0.9))
            t += WORD_S + WORD_GAP_S
        t -= WORD_GAP_S
        spans.append((start, t))
        gap = pause_s(i)
        gaps.append((t, t + gap))
        t += gap
    return words, spans, gaps[:-1], t


SENTENCES = [f"Sentence number {n} says {' '.join(['word'] * (n % 7 + 3))} here."
             for n in range(30)]


def lower_bare(words):
    """What a recogniser without punctuation or casing would give."""
    return [(w.strip(".,").lower(), s, e, c) for w, s, e, c in words]


def assert_inside(point, gaps, tol=1e-6):
    assert any(a - tol <= point <= b + tol for a, b in gaps), (point, gaps)


def test_cuts_keep_min_max_and_fall_in_pauses_without_transcript():
    words, spans, gaps, end = recording(SENTENCES)
    cfg = CutConfig(min_seconds=2.0, max_seconds=8.0)
    plan = plan_cuts(words, spans, cfg, duration_s=end)
    assert plan.cuts and not plan.rejections
    for cut in plan.cuts:
        assert cfg.min_seconds <= cut.duration <= cfg.max_seconds
        assert cut.text.endswith(".")  # sentence ends preferred when they fit
    for a, b in zip(plan.cuts, plan.cuts[1:]):
        assert a.end_s <= b.start_s
        assert_inside(a.end_s, gaps)
        assert_inside(b.start_s, gaps)
    assert " ".join(c.text for c in plan.cuts) == " ".join(w for w, *_ in words)


def test_no_cut_lands_inside_a_word():
    words, spans, gaps, end = recording(SENTENCES, pause_s=lambda i: 0.3 + (i % 5) / 10)
    plan = plan_cuts(words, spans, CutConfig(max_seconds=6.0), duration_s=end)
    for cut in plan.cuts:
        for _, s, e, _ in words:
            assert not (s < cut.start_s < e) and not (s < cut.end_s < e)


def test_transcript_words_and_punctuation_kept_and_concatenate_back():
    transcript = " ".join(SENTENCES).replace("says", "says,").replace("Sentence", "SENTENCE")
    transcript = transcript.replace("number 3", "number 3 —")  # a punctuation-only token
    words, spans, _, end = recording(SENTENCES)
    plan = plan_cuts(lower_bare(words), spans, CutConfig(max_seconds=8.0), transcript=transcript,
                     duration_s=end)
    assert " ".join(c.text for c in plan.cuts) == " ".join(transcript.split())
    assert all(c.text.endswith(".") for c in plan.cuts)  # sentence ends come from the user's text
    assert plan.cuts[0].text.startswith("SENTENCE number 0 says,")


def test_wrong_extra_and_missing_asr_words_still_align():
    transcript = " ".join(SENTENCES[:3])
    words, spans, _, _ = recording(SENTENCES[:3])
    asr = lower_bare(words)
    asr[1] = ("numbah",) + asr[1][1:]  # wrong
    asr.insert(9, ("um", words[8][2] + 0.01, words[8][2] + 0.02, 0.3))  # extra
    del asr[3]  # missing ("says")
    timed = align_transcript(transcript, as_asr_words(asr))
    assert [w.text for w in timed] == transcript.split()
    assert [w.status for w in timed][:5] == ["match", "substitution", "match", "missing", "match"]
    # the missing word sits between its neighbours, the others keep the recogniser's times
    assert timed[2].end <= timed[3].start < timed[3].end <= timed[4].start
    assert timed[1].start == words[1][1] and timed[4].start == words[4][1]
    assert timed[8].asr_after == 1  # the extra word was heard after word 8


def test_no_cut_next_to_a_word_the_recogniser_missed():
    # its time is a guess spread over the pause: cutting beside it could give its audio away
    words, spans, _, end = recording(SENTENCES[:12], pause_s=lambda i: 1.2)
    heard = [w for i, w in enumerate(lower_bare(words)) if not 25 <= i <= 26]  # "word here."
    assert words[26][0] == "here."
    plan = plan_cuts(heard, spans, CutConfig(max_seconds=8.0), transcript=" ".join(SENTENCES[:12]),
                     duration_s=end)
    assert texts_in_order(plan) == " ".join(SENTENCES[:12])
    assert all(c.text.endswith("here.") for c in plan.cuts)
    assert all(c.words[0].timed and c.words[-1].timed for c in plan.cuts[1:])


def test_cut_moved_into_the_vad_pause_is_recorded():
    words, spans, gaps, end = recording(SENTENCES[:12])
    # like Whisper, the recogniser stretches each sentence's last word over the pause
    late = [(w, s, words[i + 1][1] if w.endswith(".") and i + 1 < len(words) else e, c)
            for i, (w, s, e, c) in enumerate(words)]
    plan = plan_cuts(late, spans, CutConfig(max_seconds=8.0), duration_s=end)
    moved = [c for c in plan.cuts[:-1] if "end: vad_pause" in c.moved_why]
    assert len(moved) == len(plan.cuts) - 1
    assert all(0.25 < c.moved_s < 0.35 for c in moved)  # from the word joint to mid-pause
    for cut in plan.cuts[:-1]:
        assert_inside(cut.end_s, gaps)
    straight = plan_cuts(words, spans, CutConfig(max_seconds=8.0), duration_s=end)
    assert all("vad_pause" not in c.moved_why for c in straight.cuts)
    assert all(c.moved_s < 1e-6 for c in straight.cuts)


def test_stretch_without_pause_is_rejected_with_reason_not_dropped():
    run_on = "and then " * 40 + "stop."
    words, spans, _, end = recording(SENTENCES[:6] + [run_on] + SENTENCES[6:12])
    transcript = " ".join(SENTENCES[:6] + [run_on] + SENTENCES[6:12])
    plan = plan_cuts(lower_bare(words), spans, CutConfig(max_seconds=8.0), transcript=transcript,
                     duration_s=end)
    codes = [r.code for r in plan.rejections]
    assert codes == ["no_pause_within_max"]
    assert plan.rejections[0].text == " ".join(run_on.split())
    assert "limit 8 s" in plan.rejections[0].detail
    assert texts_in_order(plan) == " ".join(transcript.split())
    assert len(plan.cuts) >= 4


def test_drifting_transcript_is_rejected_as_poor_alignment():
    words, spans, _, end = recording(SENTENCES[:12])
    other = ["Completely different text is read here today." for _ in range(6)]
    transcript = " ".join(SENTENCES[:6] + other)
    wrong_words = [(w.lower(), s, e, c) for w, s, e, c in words]
    plan = plan_cuts(wrong_words, spans, CutConfig(max_seconds=8.0), transcript=transcript,
                     duration_s=end)
    assert plan.cuts and plan.rejections
    assert {r.code for r in plan.rejections} == {"poor_alignment"}
    assert all(c.unmatched_share <= 0.3 for c in plan.cuts)
    assert all("Completely" not in c.text for c in plan.cuts)
    assert texts_in_order(plan) == " ".join(transcript.split())


def test_unspoken_passage_in_the_transcript_is_rejected_not_kept():
    words, spans, _, end = recording(SENTENCES[:12], pause_s=lambda i: 0.6)
    unspoken = "This passage was never read aloud."
    transcript = " ".join(SENTENCES[:5] + [unspoken] + SENTENCES[5:12])
    plan = plan_cuts(lower_bare(words), spans, CutConfig(max_seconds=12.0),
                     transcript=transcript, duration_s=end)
    assert [r.code for r in plan.rejections] == ["poor_alignment"]
    assert unspoken in plan.rejections[0].text and "6 in a row" in plan.rejections[0].detail
    assert all(unspoken not in c.text for c in plan.cuts)
    assert texts_in_order(plan) == transcript


def test_short_tail_is_rejected_as_too_short():
    long = "one two three four five six seven eight nine ten."
    words, spans, _, end = recording([long] * 3 + ["Yes."], pause_s=lambda i: 1.0)
    plan = plan_cuts(words, spans, CutConfig(min_seconds=2.0, max_seconds=4.0), duration_s=end)
    assert len(plan.cuts) == 3
    assert [r.code for r in plan.rejections] == ["too_short"]
    assert plan.rejections[0].text == "Yes."


def test_no_words_heard_is_a_rejection():
    plan = plan_cuts([], [(0.5, 3.0)], transcript="Hello there.", duration_s=4.0)
    assert [r.code for r in plan.rejections] == ["no_words"]
    assert plan.rejections[0].text == "Hello there."


def test_alignment_too_large_for_memory_is_a_rejection():
    words, spans, _, end = recording(SENTENCES[:4])
    transcript = " ".join(SENTENCES[:4])
    plan = plan_cuts(words, spans, CutConfig(max_align_cells=100), transcript=transcript,
                     duration_s=end)
    assert [r.code for r in plan.rejections] == ["too_long_to_align"] and not plan.cuts
    assert texts_in_order(plan) == transcript


def test_random_recordings_respect_bounds_and_give_back_the_text():
    rng = random.Random(3)
    for trial in range(20):
        sentences = rng.sample(SENTENCES, 15)
        words, spans, gaps, end = recording(sentences, pause_s=lambda i: rng.uniform(0.2, 1.0))
        cfg = CutConfig(min_seconds=rng.uniform(1.0, 3.0), max_seconds=rng.uniform(6.0, 15.0))
        plan = plan_cuts(lower_bare(words), spans, cfg, transcript=" ".join(sentences),
                         duration_s=end)
        assert texts_in_order(plan) == " ".join(" ".join(sentences).split())
        for cut in plan.cuts:
            assert cfg.min_seconds <= cut.duration <= cfg.max_seconds
            assert 0.0 <= cut.start_s < cut.end_s <= end


def test_pauses_merge_overlapping_speech():
    assert pauses([(2.0, 3.0), (0.0, 1.0), (0.8, 1.5)]) == [(1.5, 2.0)]


@pytest.mark.parametrize("text,tokens", [
    ("Hello , world !", ["Hello ,", "world !"]),
    ("— Hello world", ["— Hello", "world"]),
])
def test_punctuation_only_tokens_stay_with_a_word(text, tokens):
    assert transcript_tokens(text) == tokens


READING = [
    "The little boat sailed across the quiet lake.",
    "She bought fresh bread at the market this morning.",
    "Rain is expected over the hills tomorrow afternoon.",
    "Please close the window before you leave the room.",
    "My brother plays the guitar in a small band.",
    "The train to the city leaves at seven every day.",
    "We planted tomatoes and beans in the garden last spring.",
    "A cold wind blew through the empty streets at night.",
    "The children laughed when the dog chased its tail.",
    "He forgot his keys on the kitchen table again.",
    "Our teacher read a long story about a brave king.",
    "The museum opens early on the first day of the month.",
    "Snow covered the mountains for most of the winter.",
    "They walked along the river until the sun went down.",
    "The old clock in the hall stopped working years ago.",
    "Turn left at the bridge and follow the narrow road.",
    "Fresh coffee smells wonderful on a rainy morning.",
    "The doctor told him to rest for a few days.",
    "Birds were singing loudly in the tall green trees.",
    "She wrote a letter to her grandmother in the country.",
    "The football match was cancelled because of the storm.",
    "We need more paper for the printer in the office.",
    "The baker wakes up long before the rest of the town.",
    "A small cat slept in the warm sun by the door.",
    "The new library has thousands of books for children.",
    "He painted the fence white during the summer holidays.",
    "The ship arrived in the harbour late in the evening.",
    "Many people came to hear the band play in the park.",
    "She keeps her old photographs in a wooden box.",
    "The road was closed after the heavy rain last week.",
    "Apples and pears grow well in this part of the country.",
    "The pilot spoke to the passengers before the flight.",
    "Our neighbours are moving to a bigger house next year.",
    "The students listened carefully to the final question.",
    "A bright moon lit the path through the dark forest.",
    "Dinner will be ready in about twenty minutes.",
]


def espeak_reading(sentences, seed=0):
    """One recording of all sentences (16 kHz) with random 0.3-0.8 s pauses, and the true
    [offset of sentence i, onset of sentence i+1] pauses measured on the samples themselves."""
    import subprocess
    import tempfile
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    from kani_adapt.audio import resample

    rng = random.Random(seed)
    parts, spoken, t = [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, sentence in enumerate(sentences):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en", "-w", str(wav), sentence], check=True,
                           capture_output=True)
            audio, rate = sf.read(wav, dtype="float32")
            audio = resample(audio, rate, 16000)
            loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
            spoken.append((t + loud[0] / 16000, t + (loud[-1] + 1) / 16000))
            pause = np.zeros(int(rng.uniform(0.3, 0.8) * 16000), np.float32)
            parts += [audio, pause]
            t += (len(audio) + len(pause)) / 16000
    true_pauses = [(a[1], b[0]) for a, b in zip(spoken, spoken[1:])]
    return np.concatenate(parts[:-1]), spoken, true_pauses


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="needs espeak-ng")
def test_espeak_reading_with_one_transcript_is_cut_in_its_pauses(tmp_path):
    from tests.asr_doubles import pocketsphinx_words, silero_speech_spans

    audio, spoken, true_pauses = espeak_reading(READING)
    duration = len(audio) / 16000
    assert 100 < duration < 160
    words = pocketsphinx_words(audio, READING, tmp_path)
    spans = silero_speech_spans(audio)
    transcript = "\n".join(READING)
    cfg = CutConfig(min_seconds=2.0, max_seconds=12.0)
    plan = plan_cuts(words, spans, cfg, transcript=transcript, duration_s=duration)

    assert not plan.rejections
    assert " ".join(c.text for c in plan.cuts) == " ".join(transcript.split())
    tol = 0.05
    for cut in plan.cuts:
        assert cfg.min_seconds <= cut.duration <= cfg.max_seconds
        # the audio of a cut holds exactly the sentences of its text
        inside = [s for s, (a, b) in zip(READING, spoken) if cut.start_s < (a + b) / 2 < cut.end_s]
        assert " ".join(inside) == cut.text
    for a, b in zip(plan.cuts, plan.cuts[1:]):
        assert any(p0 - tol <= a.end_s <= b.start_s <= p1 + tol for p0, p1 in true_pauses), \
            (a.end_s, b.start_s)
    assert len(plan.cuts) >= duration / cfg.max_seconds
    # without the transcript the recogniser's words are the text (pocketsphinx gives no
    # punctuation, so the longest pauses decide) and the cuts still fall in the pauses
    alone = plan_cuts(words, spans, cfg, duration_s=duration)
    assert not alone.rejections
    assert " ".join(c.text for c in alone.cuts) == " ".join(w for w, *_ in words)
    for a, b in zip(alone.cuts, alone.cuts[1:]):
        assert any(p0 - tol <= a.end_s <= b.start_s <= p1 + tol for p0, p1 in true_pauses)
    assert all(cfg.min_seconds <= c.duration <= cfg.max_seconds for c in alone.cuts)
