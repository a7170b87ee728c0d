"""Before any work, `data-tools prepare` and `data-tools check` look at the machine and the
recordings: models that a stage needs are on this machine, fetched, or refused in one line;
`transcribe.enabled: auto` follows what the recordings need; a stage switched off that they need
ends the run with the hours it cost (`--strict`: exit 2 before any work)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from data_tools import preflight
from data_tools.cli import main
from data_tools.config import load_config
from data_tools.records import read_jsonl
from dt_helpers import SENTENCES, EnergyCodec, espeak, good_clip, needs_espeak, with_silence, write
from kani_adapt.models.speaker import embedder as speaker_embedder
from tests.helpers import substitute_codec

ASR = "openai/whisper-large-v3"  # never in the test machine's cache (HF_HUB_OFFLINE=1)


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def corpus(root, untranscribed: bool = True, long: bool = True):
    """Two transcribed clips, one untranscribed (3 s), one long transcribed recording (9 s)."""
    write(root / "anna" / "a0.wav", tone(2.0), 16000, "hello there")
    write(root / "anna" / "a1.wav", tone(2.5), 16000, "good morning")
    if untranscribed:
        write(root / "ben" / "b0.wav", tone(3.0), 16000)
    if long:
        write(root / "cara" / "c0.wav", tone(9.0), 16000, "a long reading. with two sentences.")
    return root


def config(tmp_path, extra: str = "", tag: str = "en") -> str:
    path = tmp_path / "data.yaml"
    path.write_text(f"work: work\ningest:\n  sources:\n    - path: rec\n      tag: {tag}\n"
                    "segment:\n  max_seconds: 6\n" + extra)
    return str(path)


def test_inputs_need_counts_untranscribed_and_long_recordings_with_their_seconds(tmp_path):
    corpus(tmp_path / "rec")
    needs = preflight.inputs_need(load_config(config(tmp_path)))
    assert {k.rsplit("/", 1)[1]: round(v, 2) for k, v in needs.untranscribed.items()} == {
        "b0": 3.0}
    assert {k.rsplit("/", 1)[1]: round(v, 2) for k, v in needs.long.items()} == {"c0": 9.0}
    assert needs.input_hours == pytest.approx(16.5 / 3600, abs=1e-4)


def test_auto_transcribe_with_needy_recordings_and_no_model_stops_before_any_work(tmp_path,
                                                                                  capsys):
    corpus(tmp_path / "rec")
    (tmp_path / "embedder").mkdir()
    (tmp_path / "embedder" / "config.json").write_text("{}")
    assert main(["prepare", config(tmp_path, "embed:\n  model: embedder\ntokenize:\n"
                                             "  codec: tiny\n")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err  # one line
    assert ASR in err and "HF_HUB_OFFLINE" in err and "transcribe.enabled: off" in err
    assert "1 untranscribed recording(s)" in err and "1 long recording(s)" in err
    assert not (tmp_path / "work").exists()  # nothing was done


def test_auto_transcribe_follows_the_recordings_and_the_machine(tmp_path):
    corpus(tmp_path / "rec", untranscribed=False, long=False)
    plain = load_config(config(tmp_path))
    assert preflight.decided(plain).transcribe.enabled == "auto"  # stays off: nothing needs it
    assert not preflight.transcribe_switch(preflight.Target(plain))[1][0].problem
    whisper = tmp_path / "whisper"
    whisper.mkdir()
    (whisper / "config.json").write_text("{}")
    local = load_config(config(tmp_path, f"transcribe:\n  model: {whisper}\n"))
    assert preflight.decided(local).transcribe.enabled == "on"  # on the machine: it verifies


def test_auto_transcribe_is_fetched_when_the_hub_is_allowed(tmp_path, monkeypatch):
    corpus(tmp_path / "rec")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    target = preflight.Target(load_config(config(tmp_path)))
    assert preflight.transcribe_switch(target)[0] == "on"
    found = [f for f in preflight.check_models(target) if f.line.startswith("transcribe.model")]
    assert [f.problem for f in found] == [False]
    assert f"https://huggingface.co/{ASR}" in found[0].line


def test_strict_turns_a_stage_switched_off_into_exit_2_before_any_work(tmp_path, capsys):
    corpus(tmp_path / "rec")
    cfg = config(tmp_path, "transcribe:\n  enabled: off\ntokenize:\n  codec: tiny\n")
    assert main(["check", cfg]) == 2  # the speaker embedder is not on this machine
    out = capsys.readouterr().out
    assert "note: transcribe.enabled is off" in out and out.count("problem:") == 1
    assert main(["check", cfg, "--strict"]) == 2
    out = capsys.readouterr().out
    assert "problem: transcribe.enabled is off" in out and out.count("problem:") == 2
    assert main(["prepare", cfg, "--strict"]) == 2
    assert "transcribe.enabled is off, but the recordings hold 1 untranscribed recording(s) " \
           "(3 s) and 1 long recording(s) with one transcript (9 s)" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


@needs_espeak
def test_a_stage_switched_off_ends_the_run_with_the_hours_it_rejected(tmp_path, monkeypatch,
                                                                      caplog):
    rec = tmp_path / "rec"
    for i in range(3):
        good_clip(rec / "anna" / f"a{i}.wav", i)
    speech, sr = espeak(SENTENCES[1])
    write(rec / "ben" / "untold.wav", with_silence(speech, sr, 0.3, 0.3), sr)
    reading = np.concatenate([with_silence(espeak(s)[0], sr, 0.4, 0.4, seed=k)
                              for k, s in enumerate(SENTENCES)])
    write(rec / "cara" / "reading.wav", reading, sr, ". ".join(SENTENCES))
    speaker_embedder.save(speaker_embedder.build(seed=1), tmp_path / "embedder")
    substitute_codec(monkeypatch, EnergyCodec())
    cfg = config(tmp_path, "max_rejected_fraction: 0.6\ntranscribe:\n  enabled: off\n"
                 "align:\n  enabled: off\nfilter:\n  max_seconds: 6\n"
                 f"embed:\n  model: {tmp_path / 'embedder'}\n"
                 "tokenize:\n  codec: test-energy\n  batch_seconds: 12\n")
    with caplog.at_level("WARNING", logger="data_tools"):
        assert main(["prepare", cfg]) == 0
    lost = preflight.Needs.from_json(json.loads((tmp_path / "work" / "preflight.json")
                                                .read_text()))
    want = sum(lost.untranscribed.values()) + sum(lost.long.values())
    assert want > 10  # the untold clip and the reading
    loud = [r.getMessage() for r in caplog.records if r.getMessage().startswith("!!")]
    head = next(line for line in loud if "rejected because transcribe is off" in line)
    assert f"{preflight.duration_text(want)} (2 recording(s))" in head
    assert any("ingest: missing_transcript: 1" in line for line in loud)
    assert any("filter: too_long: 1" in line for line in loud)
    reasons = {r["reason"] for r in read_jsonl(tmp_path / "work" / "rejected.jsonl")}
    assert {"missing_transcript", "too_long"} <= reasons
    # The report tells the truth about it: input and kept hours with the share kept, hours of
    # every rejection with whose they were (ingest's too), a zero row for a speaker who lost all,
    # the checks that did not run with why, and the SNR spread.
    dataset = tmp_path / "work" / "dataset"
    summary = json.loads((dataset / "report.json").read_text())
    md = (dataset / "report.md").read_text()
    assert summary["input_hours"] == pytest.approx(summary["input_totals"]["hours"])
    assert summary["input_hours"] > summary["hours"] > 0
    assert summary["kept_share"] == pytest.approx(summary["hours"] / summary["input_hours"],
                                                  rel=0.05)  # hours are rounded to 4 places
    assert f"{summary['input_hours']:.3f} hours in the input; {summary['hours']:.3f} hours kept " \
           f"({summary['kept_share']:.0%}" in md.splitlines()[2]
    untold = next(r for r in read_jsonl(tmp_path / "work" / "rejected.jsonl")
                  if r["reason"] == "missing_transcript")
    assert (untold["speaker"], untold["tag"]) == ("ben", "en") and untold["seconds"] > 1
    per = summary["rejected_hours"]
    assert per["reason"]["ingest: missing_transcript"] == pytest.approx(untold["seconds"] / 3600,
                                                                          abs=1e-4)
    assert "?" not in per["speaker"] and per["speaker"]["ben"] > 0 and per["speaker"]["cara"] > 0
    assert summary["hours_per_speaker"]["ben"] == 0 == summary["hours_per_speaker"]["cara"]
    assert "| ben | " in md and "| cara | " in md
    not_run = {n["check"]: n["why"] for n in summary["not_run"]}
    assert not_run["transcribe"] == "transcribe.enabled is off"
    assert "align" in not_run and "DNSMOS quality" in not_run
    assert "## Checks that did not run" in md and "- transcribe: transcribe.enabled is off" in md
    assert "Estimated SNR, en: 10 % of clips below" in md and (dataset / "hist_snr.png").is_file()
