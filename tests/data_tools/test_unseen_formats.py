"""Every file of an input folder is accounted for: phone and browser formats are decoded
(PyAV's FFmpeg), what cannot be decoded is rejected with its suffix, headers that lie are
rejected, and transcripts without audio, other files and hidden characters are reported."""
from __future__ import annotations

import json
import struct

import numpy as np
import soundfile as sf

from data_tools.inputs.layouts import SourceConfig

from data_tools.stages.ingest import IngestConfig
from data_tools.records import read_jsonl
from dt_helpers import run_stage
from tests.av_audio import FORMATS, encode, video_only

RATE = 22050


def _tone(seconds=1.5, hz=220.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _lying_wav(path, claimed_bytes=2 * 10 ** 9):
    sf.write(path, _tone(1.0), RATE, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.find(b"data")
    data[at + 4:at + 8] = struct.pack("<I", claimed_bytes)
    path.write_bytes(bytes(data))


def _corpus(root):
    spk = root / "anna"
    for i, suffix in enumerate(FORMATS):  # m4a, aac, opus, webm, wma
        encode(spk / f"phone{i}{suffix}", _tone(1.5, 200 + 40 * i), RATE)
        (spk / f"phone{i}.txt").write_text(f"recording number {i}")
    sf.write(spk / "studio.aiff", _tone(1.5, 330), RATE)
    (spk / "studio.txt").write_text("\ufeffa byte order mark")
    video_only(spk / "screen.mp4")
    (spk / "screen.txt").write_text("a video without sound")
    _lying_wav(spk / "liar.wav")
    (spk / "liar.txt").write_text("the header says more than the file holds")
    sf.write(spk / "hidden.wav", _tone(1.5, 440), RATE)
    (spk / "hidden.txt").write_text("zero\u200bwidth, bidi \u202eevil\u202c and nul\x00")
    (spk / "orphan.txt").write_text("a transcript whose audio is missing")
    (root / "README.md").write_text("recorded on phones in 2026\n")
    return spk


def test_every_file_of_a_mixed_folder_is_accounted_for(tmp_path):
    root, work = tmp_path / "rec", tmp_path / "work"
    _corpus(root)
    kept = run_stage("ingest", work, budget=0.9,
                     ingest=IngestConfig(sources=[SourceConfig(path=str(root))]))
    rejected = {r["source"]: r for r in read_jsonl(work / "rejected.jsonl")}
    inputs = json.loads((work / "ingest" / "inputs.json").read_text())

    by_source = {u.source.split("/")[-1]: u for u in kept}
    assert set(by_source) == {*(f"phone{i}{s}" for i, s in enumerate(FORMATS)), "studio.aiff",
                              "hidden.wav"}
    for name, utt in by_source.items():  # decoded whole, at the codec's rate, mono
        assert 1.3 < utt.duration < 1.7, (name, utt.duration)
        audio, rate = sf.read(work / utt.audio)
        assert rate == RATE and audio.ndim == 1 and np.abs(audio).max() > 0.1, name
    assert rejected["anna/screen.mp4"]["reason"] == "unsupported_format"
    assert ".mp4" in rejected["anna/screen.mp4"]["detail"]
    assert rejected["anna/liar.wav"]["reason"] == "header_mismatch"

    unused = {u["file"].removeprefix(str(root) + "/"): u["reason"] for u in inputs["unused_files"]}
    assert unused == {"anna/orphan.txt": "transcript_without_audio", "README.md": "not_audio"}
    warned = {w["file"]: w["characters"] for w in inputs["text_warnings"]}
    assert set(warned) == {"anna/studio.aiff", "anna/hidden.wav"}
    assert warned["anna/studio.aiff"] == {"U+FEFF ZERO WIDTH NO-BREAK SPACE": 1}
    assert set(warned["anna/hidden.wav"]) == {"U+0000 CONTROL CHARACTER", "U+200B ZERO WIDTH SPACE",
                                              "U+202C POP DIRECTIONAL FORMATTING",
                                              "U+202E RIGHT-TO-LEFT OVERRIDE"}
    # nothing left over: every file is an item (kept or rejected), its transcript, or listed
    items = set(rejected) | {f"anna/{name}" for name in by_source}
    accounted = set(unused) | items | {i.rsplit(".", 1)[0] + ".txt" for i in items}
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert files == accounted, files ^ accounted


def test_the_report_lists_unused_files_and_hidden_characters(tmp_path):
    from data_tools import registry
    from data_tools.report import dataset, summary as report

    root, work = tmp_path / "rec", tmp_path / "work"
    _corpus(root)
    run_stage("ingest", work, budget=0.9, ingest=IngestConfig(sources=[SourceConfig(path=str(root))]))
    summary = report.summarise([], [], dataset.extras(work, registry.names(), {}, {}))
    text = report.markdown(summary)
    assert "## Input files not used" in text and "orphan.txt" in text and "README.md" in text
    assert "transcript_without_audio (1)" in text and "not_audio (1)" in text
    assert "U+200B ZERO WIDTH SPACE x1" in text and "hidden.wav" in text


def test_a_streamed_wav_of_unknown_length_is_not_a_header_mismatch(tmp_path):
    """Recorders that stream write 0 or 0xFFFFFFFF as the data size: unknown, not a lie."""
    from kani_adapt.audio import probe

    for claimed in (0xFFFFFFFF,):
        path = tmp_path / f"s{claimed}.wav"
        _lying_wav(path, claimed)
        assert 0.9 < probe(path).seconds < 1.1
