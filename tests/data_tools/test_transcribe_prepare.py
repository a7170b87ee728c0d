"""`data-tools prepare` on long recordings without MFA: untranscribed readings get the
recogniser's words, a reading with one transcript is cut at its pauses into the user's words,
a clip whose transcript belongs to another clip is rejected. pocketsphinx (a language model of
the sentences) stands in for Whisper behind the same stage interface."""
from __future__ import annotations

import json

import pytest

from data_tools.stages import transcribe
from data_tools.cli import main
from data_tools.records import read_jsonl
from data_tools.records import read_stage_results
from tests.helpers import substitute_codec
from dt_helpers import EnergyCodec, SENTENCES, good_clip, needs_espeak, write
from tests.helpers import tiny_embedder_folder
from kani_adapt.scorers.text import error_rates
from test_longform import READING, espeak_reading

UNTOLD = (READING[0:7], READING[7:14])  # two untranscribed readings by anna
TOLD = READING[14:22]  # one reading by ben, with its transcript


@pytest.mark.slow
@needs_espeak
def test_prepare_turns_long_recordings_into_a_dataset_in_one_command(tmp_path, monkeypatch):
    from sphinx_recogniser import SphinxRecogniser

    rec = tmp_path / "recordings"
    truth = {}
    for i, sentences in enumerate(UNTOLD):
        audio, spoken, pauses = espeak_reading(sentences, seed=i)
        write(rec / "anna" / f"reading{i}.wav", audio, 16000)
        truth[f"reading{i}"] = (sentences, pauses)
    audio, spoken, told_pauses = espeak_reading(TOLD, seed=5)
    write(rec / "ben" / "told.wav", audio, 16000, " ".join(TOLD))
    good_clip(rec / "ben" / "right.wav", 1)
    good_clip(rec / "ben" / "wrong.wav", 2)
    (rec / "ben" / "wrong.txt").write_text(SENTENCES[3])  # another clip's text

    asr = SphinxRecogniser(READING + SENTENCES, tmp_path / "lm")
    monkeypatch.setattr(transcribe, "WhisperRecogniser", lambda cfg: asr)
    whisper = tmp_path / "whisper"  # the preflight finds a model folder; the stage hears sphinx
    whisper.mkdir()
    (whisper / "config.json").write_text("{}")
    substitute_codec(monkeypatch, EnergyCodec())
    tiny_embedder_folder(tmp_path / "embedder")
    config = tmp_path / "data.yaml"
    config.write_text(
        "work: work\ningest:\n  sources:\n    - path: recordings\n      tag: en\n"
        "segment:\n  max_seconds: 12\n  min_silence_seconds: 0.2\n  voice_changes: off\n"
        f"transcribe:\n  enabled: on\n  model: {whisper}\n"
        f"embed:\n  model: {tmp_path / 'embedder'}\n"
        # this test is about transcription and cutting; the voice checks have their own tests
        # (the random tiny embedder hears one cut of the long reading far from its speaker's
        # centroid, and a voice change inside it)
        "outliers:\n  enabled: off\n"
        "tokenize:\n  codec: test-energy\n  batch_seconds: 30\n")
    assert main(["prepare", str(config)]) == 0
    work = tmp_path / "work"

    rejected = list(read_jsonl(work / "rejected.jsonl"))
    assert [(r["id"].rsplit("/", 1)[1], r["reason"]) for r in rejected
            if r["stage"] != "transcribe" or "#" not in r["id"]] == [
        ("wrong", "transcript_mismatch")]
    cut_of = {u["id"]: u for u in read_jsonl(work / "transcribe" / "manifest.jsonl")}

    # the reading with one transcript: its cuts hold the user's words, in order, and the kept
    # and dropped stretches give back the whole transcript; every cut lies between true pauses
    told = sorted((u for k, u in cut_of.items() if "/told#cut" in k), key=lambda u: u["start"])
    log = next(r for k, r in read_stage_results(work, "transcribe").items() if k.endswith("/told"))
    dropped = log["extra"]["dropped"]
    assert len(told) >= 2 and not dropped
    assert " ".join(u["text"] for u in told) == " ".join(TOLD)
    for a, b in zip(told, told[1:]):
        end_a = a["start"] + a["duration"]
        assert any(p0 - 0.05 <= end_a <= b["start"] <= p1 + 0.05 for p0, p1 in told_pauses)
    assert all(c["moved_s"] >= 0 and c["moved_why"] for c in log["extra"]["cuts"])

    # untranscribed readings: the recogniser's words, cut by the segment stage at pauses
    for name, (sentences, pauses) in truth.items():
        parts = sorted((u for k, u in cut_of.items() if f"/{name}#" in k),
                       key=lambda u: u["start"])
        assert len(parts) >= 2
        said = " ".join(u["text"] for u in parts)
        want = " ".join(s.lower().rstrip(".") for s in sentences)
        assert error_rates(want, said, "en").cer < 0.15
        for a, b in zip(parts, parts[1:]):
            end_a = a["start"] + a["duration"]
            assert any(p0 - 0.2 <= end_a <= b["start"] <= p1 + 0.2 for p0, p1 in pauses)

    from datasets import load_from_disk

    ds = load_from_disk(str(work / "dataset" / "hf"))
    assert {"cer", "asr_avg_logprob", "dnsmos_ovrl"} <= set(ds.column_names)
    by_source = dict(zip(ds["source"], ds["cer"]))
    assert by_source["recordings/ben/right"] < 0.2
    assert len(ds) == len([k for k in cut_of if "/wrong" not in k]) - len(
        [r for r in rejected if r["stage"] in ("filter", "embed", "outliers", "tokenize")])
    report = (work / "dataset" / "report.md").read_text()
    assert "## Hours rejected per reason" in report and "transcribe: transcript_mismatch" in report
    assert (work / "dataset" / "hist_speaking_rate.png").stat().st_size > 1000
    assert "hist_cer.png" in report
    summary = json.loads((work / "dataset" / "report.json").read_text())
    assert summary["rejected_hours"]["speaker"]["ben"] > 0
