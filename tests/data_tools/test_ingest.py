import json

import numpy as np
import soundfile as sf

from data_tools.inputs import ids
from data_tools.inputs.layouts import SourceConfig
from data_tools.stages.ingest import IngestConfig
from data_tools.records import read_jsonl, read_manifest
from dt_helpers import espeak, good_clip, needs_espeak, plant_bad_files, run_stage, write

pytestmark = needs_espeak


def rejected_by_stem(work):
    return {r["id"].rsplit("/", 1)[-1]: r["reason"] for r in read_jsonl(work / "rejected.jsonl")}


def test_bad_inputs_each_get_a_reason_and_good_files_survive(tmp_path):
    root, outside, work = tmp_path / "in", tmp_path / "outside", tmp_path / "work"
    outside.mkdir()
    expected = plant_bad_files(root, outside)
    good_clip(root / "alice" / "a0.wav", 0)
    audio, sr = espeak("stereo and narrow band speech")
    write(root / "alice" / "stereo.wav", np.stack([audio, 0.5 * audio], 1), sr, "stereo speech")
    import soxr
    write(root / "bob" / "phone.flac", soxr.resample(audio, sr, 8000), 8000, "phone speech")
    cfg = IngestConfig(sources=[SourceConfig(path=str(root), tag="EN")])
    utts = run_stage("ingest", work, budget=1.0, ingest=cfg)

    assert rejected_by_stem(work) == expected
    by_id = {u.id.rsplit("/", 1)[-1]: u for u in utts}
    assert set(by_id) == {"a0", "stereo", "phone"}
    assert by_id["stereo"].channels == 2 and by_id["phone"].orig_sample_rate == 8000
    assert by_id["a0"].speaker == "alice" and by_id["a0"].tag == "en"
    assert by_id["a0"].id == "in/alice/a0"
    for u in utts:
        data, rate = sf.read(work / u.audio)
        assert rate == 22050 and data.ndim == 1
        assert abs(len(data) / rate - u.duration) < 1e-6
    assert "secret" not in json.dumps([u.to_dict() for u in utts])


def test_rerun_skips_finished_work_and_a_torn_log_line_is_redone(tmp_path):
    root, work = tmp_path / "in", tmp_path / "work"
    for i in range(3):
        good_clip(root / "s" / f"c{i}.wav", i)
    cfg = IngestConfig(sources=[SourceConfig(path=str(root))])
    first = run_stage("ingest", work, ingest=cfg)
    log = work / "ingest" / "log.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    # Interrupted while appending the last record: half a line on disk.
    log.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    mtime = (work / first[0].audio).stat().st_mtime_ns
    again = run_stage("ingest", work, ingest=cfg)
    assert sorted(u.id for u in again) == sorted(u.id for u in first)
    assert len(read_manifest(work / "ingest" / "manifest.jsonl")) == 3
    assert (work / first[0].audio).stat().st_mtime_ns == mtime  # not redone


def test_too_many_rejections_fail_the_stage_after_recording_them(tmp_path):
    import pytest

    from kani_adapt.core.errors import DataError

    root, work = tmp_path / "in", tmp_path / "work"
    good_clip(root / "s" / "ok.wav", 0)
    for i in range(2):
        (root / "s" / f"bad{i}.wav").write_bytes(b"not audio")
        (root / "s" / f"bad{i}.txt").write_text("x")
    with pytest.raises(DataError, match="max_rejected_fraction"):
        run_stage("ingest", work, ingest=IngestConfig(sources=[SourceConfig(path=str(root))]))
    assert len(list(read_jsonl(work / "rejected.jsonl"))) == 2


def test_ljspeech_and_commonvoice_layouts(tmp_path):
    lj, cv, work = tmp_path / "lj", tmp_path / "cv", tmp_path / "work"
    good_clip(lj / "wavs" / "LJ001-0001.wav", 0)
    good_clip(lj / "wavs" / "LJ001-0002.wav", 1)
    (lj / "metadata.csv").write_bytes(
        b"LJ001-0001|Raw 1 text|the one text\nLJ001-0002|second text|\nLJ001-0003|caf\xe9|x\n")
    good_clip(cv / "clips" / "cv_1.mp3.wav", 2)
    (cv / "validated.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\nabc123\tcv_1.mp3.wav\tHallo Welt\t2\n"
        "abc124\tmissing.mp3\tWo bist du\t1\n", encoding="utf-8")
    cfg = IngestConfig(sources=[SourceConfig(path=str(lj), layout="ljspeech", speaker="linda"),
                                SourceConfig(path=str(cv), layout="commonvoice", tag="de")])
    utts = {u.id: u for u in run_stage("ingest", work, budget=1.0, ingest=cfg)}
    assert utts["lj/wavs/LJ001-0001"].text == "the one text"
    assert utts["lj/wavs/LJ001-0002"].text == "second text"
    assert utts["cv/clips/cv_1.mp3"].speaker == "abc123"
    assert utts["cv/clips/cv_1.mp3"].tag == "de"
    reasons = {r["source"]: r["reason"] for r in read_jsonl(work / "rejected.jsonl")}
    assert reasons == {"metadata.csv:3": "transcript_not_utf8", "validated.tsv:3": "missing_audio"}


def test_ids_are_safe_and_distinct():
    a = ids.make_id("src", "spk/ä b.wav")
    b = ids.make_id("src", "spk/ö b.wav")
    assert a != b and a.startswith("src/spk/") and " " not in a
    assert ids.make_id("src", "x/y.flac") == "src/x/y"


def test_ogg_mp3_flac_are_read_and_very_long_files_are_refused(tmp_path):
    import soundfile as sf

    root, work = tmp_path / "in", tmp_path / "work"
    audio, sr = espeak("compressed formats work too")
    formats = {"flac": {}, "ogg": {"format": "OGG", "subtype": "VORBIS"}}
    if "MP3" in sf.available_formats():
        formats["mp3"] = {"format": "MP3", "subtype": "MPEG_LAYER_III"}
    for ext, kw in formats.items():
        write(root / "s" / f"clip_{ext}.{ext}", audio, sr, "compressed formats", **kw)
    long_audio = np.tile(audio, 4)
    write(root / "s" / "long.wav", long_audio, sr, "a very long reading")
    cfg = IngestConfig(sources=[SourceConfig(path=str(root))],
                       max_file_seconds=len(audio) / sr * 2)
    utts = run_stage("ingest", work, ingest=cfg)
    assert sorted(u.id.rsplit("/", 1)[1] for u in utts) == sorted(f"clip_{e}" for e in formats)
    for u in utts:
        assert abs(u.duration - len(audio) / sr) < 0.1  # decoders may pad a few ms
    assert rejected_by_stem(work) == {"long": "too_long_file"}
