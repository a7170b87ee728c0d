"""The transcribe stage: transcript check with a real recogniser, ASR transcripts and their
guards, the tiny Whisper through the real loading code, and resuming after an interruption."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from data_tools.stages import transcribe
from data_tools.inputs.layouts import SourceConfig
from data_tools.stages.ingest import IngestConfig
from data_tools.stages.transcribe import TranscribeConfig
from data_tools.records import read_jsonl
from data_tools.records import read_stage_results
from dt_helpers import SENTENCES, good_clip, needs_espeak, run_stage, write
from kani_adapt.scorers.asr import Transcript


def test_repeated_ngram_finds_back_to_back_loops():
    from data_tools.speech.guards import repeated_ngram

    assert repeated_ngram("we will we will we will we will rock you") == ("we will", 4)
    assert repeated_ngram("the cat sat on the mat")[1] == 1


def test_each_guard_names_its_reason():
    cfg = TranscribeConfig()
    ok = Transcript("a clear sentence", "en", -0.3, 0.05, 1.2, math.nan, False)
    assert transcribe.guard_reasons(ok, 3.0, cfg) == []
    cases = {"asr_low_logprob": dict(avg_logprob=-1.5), "asr_no_speech": dict(no_speech_prob=0.9),
             "asr_compression_ratio": dict(compression_ratio=3.1),
             "asr_repeated_ngram": dict(text="thank you thank you thank you thank you"),
             "asr_empty": dict(text=" ")}
    for code, change in cases.items():
        bad = Transcript(**{**ok.__dict__, **change})
        assert [c for c, _ in transcribe.guard_reasons(bad, 3.0, cfg)] == [code]


def test_words_per_second_outside_the_speakers_range_are_rejected():
    cfg = TranscribeConfig()
    rates = {f"a{i}": ("anna", 2.5 + 0.05 * i) for i in range(6)}
    rates["a_fast"] = ("anna", 5.5)  # inside the absolute range, far from anna's median
    rates["b0"] = ("ben", 9.0)  # outside the absolute range (too few clips for statistics)
    assert set(transcribe.rate_rejections(rates, cfg)) == {"a_fast", "b0"}


def test_whisper_words_stay_inside_the_speech_they_were_heard_in():
    spans = [(1.0, 3.0), (4.0, 5.0)]
    words = transcribe.span_words("one two three four five six", spans)
    assert [w for w, *_ in words] == "one two three four five six".split()
    for _, s, e in words:
        assert any(a <= s <= e <= b for a, b in spans)
    assert all(a[2] <= b[1] for a, b in zip(words, words[1:]))  # in order, no overlap
    assert [len(w) for w in transcribe.span_windows([(0, 10), (11, 25), (26, 40)], 28)] == [2, 1]


def _config(tmp_path, **transcribe_kw):
    return dict(ingest=IngestConfig(sources=[SourceConfig(path=str(tmp_path / "rec"), tag="en")]),
                transcribe=TranscribeConfig(enabled="on", **transcribe_kw))


def _ingest_segment(tmp_path, given, **transcribe_kw):
    work = tmp_path / "work"
    sections = _config(tmp_path, **transcribe_kw)
    run_stage("ingest", work, budget=1.0, **sections)
    run_stage("segment", work, budget=1.0, **sections)
    return work, sections


@pytest.mark.slow
@needs_espeak
def test_transcript_check_keeps_right_texts_and_rejects_another_clips_text(tmp_path):
    from sphinx_recogniser import SphinxRecogniser

    for i in range(3):
        good_clip(tmp_path / "rec" / "anna" / f"c{i}.wav", i)
    good_clip(tmp_path / "rec" / "anna" / "wrong.wav", 3)
    (tmp_path / "rec" / "anna" / "wrong.txt").write_text(SENTENCES[0])  # clip c0's text
    asr = SphinxRecogniser(SENTENCES, tmp_path / "lm")
    work, sections = _ingest_segment(tmp_path, asr)
    kept = run_stage("transcribe", work, given={"asr": asr}, **sections)

    assert sorted(u.id.rsplit("/", 1)[1] for u in kept) == ["c0", "c1", "c2"]
    assert [u.text for u in sorted(kept, key=lambda u: u.id)] == SENTENCES[:3]
    [record] = list(read_jsonl(work / "rejected.jsonl"))
    assert record["reason"] == "transcript_mismatch" and record["id"].endswith("/wrong")
    assert SENTENCES[0] in record["detail"] and SENTENCES[3] in record["detail"]
    cols = {k: r["extra"]["columns"][k]["cer"] for k, r in
            read_stage_results(work, "transcribe").items() if r["extra"].get("columns")}
    # a real recogniser slips now and then (~10 % CER); another clip's text is far above
    assert len(cols) == 3 and max(cols.values()) < 0.2
    assert float(record["detail"].split()[1]) > 0.5


@pytest.mark.slow
@needs_espeak
def test_clips_without_a_transcript_get_the_recognisers_text(tmp_path):
    from sphinx_recogniser import SphinxRecogniser
    from kani_adapt.scorers.text import error_rates

    for i in range(2):
        path = good_clip(tmp_path / "rec" / "ben" / f"u{i}.wav", i)
        path.with_suffix(".txt").unlink()
    asr = SphinxRecogniser(SENTENCES, tmp_path / "lm")
    work, sections = _ingest_segment(tmp_path, asr)
    kept = sorted(run_stage("transcribe", work, given={"asr": asr}, **sections),
                  key=lambda u: u.id)
    assert len(kept) == 2
    for i, utt in enumerate(kept):
        assert error_rates(SENTENCES[i], utt.text, "en").cer < 0.15


class Scripted:
    """A recogniser that answers from a script, counts what it heard, and can be stopped."""

    name = "scripted"

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = 0, stop_after

    def transcribe(self, audios, rate, languages=None):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += len(audios)
        return [Transcript("one two three four five", "en", -0.2, 0.01, 1.1, math.nan, False)
                for _ in audios]


def test_interrupted_transcribe_resumes_without_loss_or_duplicates(tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(0)
    for i in range(5):  # different lengths: several batches
        audio = (rng.standard_normal(22050 * (2 + i)) * 0.1).astype(np.float32)
        write(tmp_path / "rec" / "s" / f"u{i}.wav", audio, 22050)
    work = tmp_path / "work"
    sections = _config(tmp_path, batch_size=2)
    utts = run_stage("ingest", work, budget=1.0, **sections)
    assert len(utts) == 5 and not any(u.text for u in utts)
    first = Scripted(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_stage("transcribe", work, inputs=utts, given={"asr": first}, **sections)
    done_before = set(read_stage_results(work, "transcribe"))
    assert len(done_before) == 2 and not (work / "transcribe" / "manifest.jsonl").exists()
    second = Scripted()
    kept = run_stage("transcribe", work, inputs=utts, given={"asr": second}, **sections)
    assert second.calls == 3  # only what was missing
    assert sorted(u.id for u in kept) == sorted(u.id for u in utts)  # nothing lost or doubled
    manifest = [r["id"] for r in read_jsonl(work / "transcribe" / "manifest.jsonl")]
    assert len(manifest) == len(set(manifest)) == 5
    assert {u.text for u in kept} == {"one two three four five"}
    assert sf.info(str(work / kept[0].audio)).frames > 0


@pytest.mark.slow
def test_tiny_whisper_writes_transcripts_through_the_real_loading_code(tmp_path):
    from tests.scorers.whisper_twin import build_tiny_whisper
    from kani_adapt.audio import read_clip
    from data_tools.config import DataConfig
    from kani_adapt.scorers.asr import WhisperASR

    model = build_tiny_whisper(tmp_path / "tiny-whisper")
    rng = np.random.default_rng(1)
    for i in range(3):
        t = np.arange(22050 * (2 + i)) / 22050
        audio = (0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.05 * rng.standard_normal(len(t)))
        write(tmp_path / "rec" / "s" / f"w{i}.wav", audio.astype(np.float32), 22050)
    sections = _config(tmp_path)
    sections["transcribe"] = TranscribeConfig(model=str(model))  # auto: the folder is here
    assert transcribe.STAGE.enabled(DataConfig(**sections))
    work = tmp_path / "work"
    utts = run_stage("ingest", work, budget=1.0, **sections)
    assert len(utts) == 3  # ingest keeps clips without text: a later stage writes it

    # A random model is unsure of every token: the log-probability guard rejects its text.
    assert run_stage("transcribe", work, inputs=utts, budget=1.0, **sections) == []
    reasons = {r["reason"] for r in read_jsonl(work / "rejected.jsonl")}
    assert "asr_low_logprob" in reasons or "asr_empty" in reasons

    loose = TranscribeConfig(model=str(model), min_avg_logprob=-1e3, max_compression_ratio=1e3,
                             max_ngram_repeats=1000, min_words_per_second=0.0,
                             max_words_per_second=1e3)
    sections["transcribe"] = loose
    kept = run_stage("transcribe", work, inputs=utts, budget=1.0, **sections)  # settings changed
    direct = WhisperASR.load(str(model), "cpu")
    clips = [read_clip(work / u.audio)[0] for u in utts]
    want = {u.id: t for u, t in zip(utts, direct.transcribe(clips, 22050, ["en"] * 3))}
    assert kept and {u.id: u.text for u in kept} == {k: t.text for k, t in want.items()
                                                     if t.text.strip()}
    results = read_stage_results(work, "transcribe")
    for u in kept:
        cols = results[u.id]["extra"]["columns"][u.id]
        assert cols["asr_avg_logprob"] == pytest.approx(want[u.id].avg_logprob, abs=1e-3)
    assert json.loads((work / "transcribe" / "settings.json").read_text())["settings"][
        "min_avg_logprob"] == -1e3


def test_detected_language_must_match_the_tag():
    class Detects:
        def detect_language(self, audios, rate):
            return [{"en": 0.9, "de": 0.1}, {"en": 0.2, "de": 0.8}]

    cfg = TranscribeConfig(detect_language=True)
    found = transcribe.check_language(Detects(), [None, None], 16000, ["en", "en"], cfg)
    assert found[0] is None and "heard de" in found[1]
    cfg.detect_language = False  # forced from the tag: nothing is detected
    found = transcribe.check_language(Detects(), [None, None], 16000, ["en", "en"], cfg)
    assert found == [None, None]


def test_transcribe_settings_are_checked_at_load(tmp_path):
    from data_tools.config import load_config
    from kani_adapt.core.errors import ConfigError

    (tmp_path / "rec").mkdir()
    path = tmp_path / "data.yaml"
    path.write_text("ingest: {sources: [{path: rec}]}\ntranscribe: {enabled: off}\n")
    assert load_config(path).transcribe.enabled == "off"  # YAML's boolean off means the switch
    path.write_text("ingest: {sources: [{path: rec}]}\n"
                    "transcribe: {max_transcript_cer: -1, max_no_speech_prob: 2}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"2 problems: {path}.transcribe.max_transcript_cer: -1.0 is outside "
                              f">= 0; {path}.transcribe.max_no_speech_prob: 2.0 is outside [0, 1]")
    path.write_text("ingest: {sources: [{path: rec}]}\ntranscribe: {min_words_per_second: 9}\n")
    with pytest.raises(ConfigError, match="transcribe: min_words_per_second .9.0. must be below "
                                          "max_words_per_second .6.0."):
        load_config(path)


def test_a_recogniser_without_word_times_is_asked_per_window_of_speech():
    class TextOnly:
        def __init__(self):
            self.lengths = []

        def transcribe(self, audios, rate, languages):
            self.lengths += [len(a) / rate for a in audios]
            return [Transcript(f"w{i} x{i} y{i}", "en", -0.1, 0.0, 1.0, math.nan, False)
                    for i in range(len(audios))]

    asr = TextOnly()
    spans = [(0.5, 12.0), (13.0, 25.0), (26.0, 40.0)]  # 40 s: more than one Whisper window
    words = transcribe.asr_words(asr, np.zeros(16000 * 41, np.float32), 16000, "en", spans)
    assert asr.lengths == pytest.approx([24.5, 14.0])  # windows end to end, each within 28 s
    assert [w for w, *_ in words] == ["w0", "x0", "y0", "w1", "x1", "y1"]
    assert all(any(a <= s <= e <= b for a, b in spans) for _, s, e in words)


class Listening(Scripted):
    """A scripted recogniser that keeps the language it was told for each clip."""

    def __init__(self):
        super().__init__()
        self.languages = []

    def transcribe(self, audios, rate, languages=None):
        self.languages += list(languages or [])
        return super().transcribe(audios, rate, languages)


def test_whisper_is_told_each_tag_s_language_from_the_tags_section(tmp_path):
    from kani_adapt.text.tags import Tag

    rng = np.random.default_rng(0)
    for i in range(2):
        write(tmp_path / "rec" / "s" / f"u{i}.wav",
              (rng.standard_normal(22050 * 2) * 0.1).astype(np.float32), 22050)
    work, sections = tmp_path / "work", _config(tmp_path)
    utts = run_stage("ingest", work, budget=1.0, **sections)
    told = Listening()
    run_stage("transcribe", work, inputs=utts, given={"asr": told}, **sections)
    assert told.languages == ["en", "en"]  # the tag's first part
    retold = Listening()  # a tag whose language Whisper knows by another code: heard again
    run_stage("transcribe", work, inputs=utts, given={"asr": retold},
              tags={"en": Tag(asr_language="de")}, **sections)
    assert retold.languages == ["de", "de"]
