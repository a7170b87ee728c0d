"""Ingest reads a packaged contribution (`contribute package`'s folder, or its hub id) as a
source layout: speakers, accents, transcripts and the licence kept, its audio bytes read within
the contribution gate's bounds; a recipe trains on it."""
import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from data_tools.cli import main
from data_tools.inputs.layouts import SourceConfig, discover
from data_tools.records import read_jsonl
from data_tools.stages.ingest import IngestConfig
from dt_helpers import needs_espeak, run_stage
from kani_adapt.core.errors import ConfigError
import test_contribute

pytestmark = needs_espeak
good = test_contribute.good  # the shared fixture: a contribution of three speakers
MIN_HOURS = "0.002"  # the test contribution holds a few seconds per speaker


@pytest.fixture(scope="module")
def packaged(good, tmp_path_factory):
    out = tmp_path_factory.mktemp("pkg") / "glasgow-hf"
    assert main(["contribute", "package", str(good), "--out", str(out), "--quiet",
                 "--min-hours", MIN_HOURS]) == 0
    return out


def test_every_row_becomes_an_item_with_its_speaker_accent_and_transcript(good, packaged):
    found = discover(SourceConfig(path=str(packaged), layout="contribution"))
    by_id = {c.id: c for c in found}
    assert len(found) == 12 and not any(c.error for c in found)
    c = by_id["glasgow-hf/train/s2/c1"]
    assert (c.speaker, c.tag) == ("s2", "en_glasgow")
    assert c.text == (good / "audio/train/s2/c1.txt").read_text()
    assert c.source == "data/train-00000-of-00001.parquet:row 5"
    assert {c.speaker for c in found if "/test/" in c.id} == {"s3"}
    only = discover(SourceConfig(path=str(packaged), layout="contribution", splits=["train"],
                                 name="gl", speaker="", tag="en_glasgow_read"))
    assert len(only) == 8 and {c.tag for c in only} == {"en_glasgow_read"}
    assert all(c.id.startswith("gl/train/") for c in only)


def test_ingest_keeps_the_original_bytes_and_the_licence_and_leaves_nothing_unpacked(
        good, packaged, tmp_path):
    work = tmp_path / "work"
    utts = run_stage("ingest", work, ingest=IngestConfig(
        sources=[SourceConfig(path=str(packaged), layout="contribution")]))
    assert len(utts) == 12 and not list(read_jsonl(work / "rejected.jsonl"))
    u = next(u for u in utts if u.id == "glasgow-hf/train/s1/c3")
    original = good / "audio/train/s1/c3.wav"
    assert u.sha256 == hashlib.sha256(original.read_bytes()).hexdigest()
    assert (u.speaker, u.tag, u.text) == ("s1", "en_glasgow", (original.with_suffix(".txt"))
                                         .read_text())
    import soundfile as sf

    assert abs(u.duration - sf.info(original).duration) < 0.01
    assert not [p for p in (work / "ingest" / "unpacked").rglob("*") if p.is_file()]
    inputs = json.loads((work / "ingest" / "inputs.json").read_text())
    assert inputs["sources"] == [{
        "source": str(packaged), "pretty_name": "Test accent", "license": "cc-by-4.0",
        "not_checked": inputs["sources"][0]["not_checked"],
        "thresholds_changed": {"min_hours": {"value": 0.002, "default": 1.0}},
        "name": "glasgow-hf"}]
    assert any(n["check"] == "transcripts against speech recognition"
               for n in inputs["sources"][0]["not_checked"])
    assert inputs["unused_files"] == []  # card, gate report and shards all accounted for


def _hostile_package(packaged: Path, dest: Path) -> Path:
    """A package whose rows a stranger wrote: a six-minute clip, bytes that are no audio, a row
    without audio, a transcript past the limit, an id that climbs out, next to one good row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(packaged, dest)
    good_row = pq.read_table(packaged / "data" / "train-00000-of-00001.parquet").to_pylist()[0]
    rate, seconds = 8000, 360
    data = seconds * rate * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    six_minutes = (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " + fmt + b"data"
                   + struct.pack("<I", data) + bytes(data))
    rows = [dict(good_row, id="train/s1/ok"),
            dict(good_row, id="train/s1/long", audio={"bytes": six_minutes, "path": "long.wav"}),
            dict(good_row, id="train/s1/noise", audio={"bytes": b"not audio" * 50, "path": "x.wav"}),
            dict(good_row, id="train/s1/empty", audio={"bytes": None, "path": "e.wav"}),
            dict(good_row, id="train/s1/wordy", text="word " * 100),
            dict(good_row, id="../../../escape")]
    for f in (dest / "data").glob("*.parquet"):
        f.unlink()
    table = pa.Table.from_pylist(rows, schema=pq.read_schema(
        packaged / "data" / "train-00000-of-00001.parquet"))
    pq.write_table(table, dest / "data" / "train-00000-of-00001.parquet", row_group_size=2)
    return dest


def test_hostile_rows_are_each_rejected_with_a_reason_and_never_decoded_past_the_bound(
        packaged, tmp_path, monkeypatch):
    import kani_adapt.audio
    from data_tools.stages import ingest

    pkg = _hostile_package(packaged, tmp_path / "hostile")
    decoded, real = [], kani_adapt.audio.read

    def spy(path, *args, **kwargs):
        decoded.append((Path(path).name, kwargs.get("max_seconds")))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(kani_adapt.audio, "read", spy)
    monkeypatch.setattr(ingest, "read", spy)
    work = tmp_path / "work"
    kept = run_stage("ingest", work, budget=1.0, ingest=IngestConfig(
        sources=[SourceConfig(path=str(pkg), layout="contribution")], max_transcript_bytes=200))
    rejected = {r["id"].rsplit("/", 1)[-1]: r["reason"] for r in read_jsonl(work / "rejected.jsonl")}
    assert rejected == {"long": "clip_too_long", "noise": "unreadable_audio",
                        "empty": "missing_audio", "wordy": "transcript_too_long"}, rejected
    climbed, ok = sorted(u.id for u in kept)  # the climbing id made safe: its own name
    assert ok == "hostile/train/s1/ok" and climbed.startswith("hostile/_/_/_/escape-")
    assert not any(name.startswith("long") for name, _ in decoded)  # refused from its header
    assert all(seconds is not None for _, seconds in decoded)  # every decode bounded
    assert all((work / u.audio).resolve().is_relative_to(work.resolve()) for u in kept)


def test_a_folder_that_is_no_package_is_one_line_naming_it(tmp_path, good, packaged, capsys):
    with pytest.raises(ConfigError, match="README.md: a package has a card"):
        from data_tools.inputs import package

        package.terms(good / "audio", "x")
    with pytest.raises(ConfigError, match="no data folder"):
        discover(SourceConfig(path=str(good), layout="contribution"))
    bad = tmp_path / "bad"
    shutil.copytree(good, bad / "x")
    (bad / "data").mkdir()
    (bad / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ConfigError, match="not a readable parquet file"):
        discover(SourceConfig(path=str(bad), layout="contribution"))
    # `check` refuses the same before the run, one line each: no card, a shard that is no parquet
    capsys.readouterr()
    assert main(["check", _data_config(tmp_path, path=bad)]) == 2
    assert _problems(capsys) == [f"{bad / 'README.md'}: a package has a card"]
    (bad / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n")
    assert main(["check", _data_config(tmp_path, path=bad)]) == 2
    assert _problems(capsys) == [f"{bad / 'data' / 'train-00000-of-00001.parquet'}: not a "
                                 "readable parquet file"]
    shutil.copy(packaged / "data" / "train-00000-of-00001.parquet", bad / "data")
    main(["check", _data_config(tmp_path, path=bad)])  # (offline: the models are problems)
    assert _problems(capsys) == []
    assert SourceConfig(path="x", hub="o/n", layout="contribution").validate()
    assert SourceConfig(hub="o/n").validate() == \
        ["hub is for layout: contribution (a packaged contribution), not folder"]


def _cache_twin(packaged: Path, cache: Path, repo_id: str) -> None:
    """The Hugging Face cache as huggingface_hub lays a downloaded dataset out: blobs by hash,
    a snapshot of links to them, refs/main naming the snapshot."""
    repo = cache / f"datasets--{repo_id.replace('/', '--')}"
    revision = "0" * 40
    for f in packaged.rglob("*"):
        if f.is_file():
            blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, blob)
            link = repo / "snapshots" / revision / f.relative_to(packaged)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)


def test_a_hub_id_reads_from_the_cache_offline_and_is_refused_in_one_line_without_it(
        packaged, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    _cache_twin(packaged, tmp_path / "cache", "someone/glasgow")
    found = discover(SourceConfig(hub="someone/glasgow", layout="contribution"))
    assert len(found) == 12 and found[0].id.startswith("glasgow/")
    work = tmp_path / "work"
    utts = run_stage("ingest", work, ingest=IngestConfig(
        sources=[SourceConfig(hub="someone/glasgow", layout="contribution", splits=["test"])]))
    assert {u.speaker for u in utts} == {"s3"} and len(utts) == 4
    assert json.loads((work / "ingest" / "inputs.json").read_text())["sources"][0]["source"] == \
        "someone/glasgow"
    with pytest.raises(ConfigError) as err:
        discover(SourceConfig(hub="someone/elsewhere", layout="contribution"))
    assert "HF_HUB_OFFLINE" in str(err.value) and "\n" not in str(err.value)
    assert main(["check", _data_config(tmp_path, "someone/elsewhere")]) == 2


def _data_config(tmp_path: Path, hub_id: str = "", path: Path | None = None) -> str:
    source = f"hub: {hub_id}" if hub_id else f"path: {path}"
    config = tmp_path / "data.yaml"
    config.write_text(f"work: {tmp_path / 'w'}\ningest:\n  sources:\n"
                      f"    - {{layout: contribution, {source}}}\n")
    return str(config)


def _problems(capsys) -> list[str]:
    """The problems `check` printed about the source, each cut after its first clause (the
    fix follows)."""
    out = capsys.readouterr().out
    return [line.split(": ", 2)[2].split(";")[0].split(" (")[0]
            for line in out.splitlines() if line.startswith("  problem: ingest.sources[0]: ")]


def test_the_packaged_card_lists_the_checks_not_run_and_the_lowered_thresholds(packaged):
    from data_tools.contribute.card import front_matter

    _, body = front_matter((packaged / "README.md").read_text(), packaged / "README.md")
    not_covered = body.split("## What the check did not cover", 1)[1].split("## Statistics")[0]
    assert "transcripts against speech recognition" in not_covered
    if shutil.which("mfa") is None:
        assert "alignment: Montreal Forced Aligner is not installed" in not_covered
    assert "`min_hours`: 0.002 (default 1.0)" in not_covered
    assert "min_speakers" not in not_covered  # left at its default
    report = json.loads((packaged / "validation.json").read_text())
    assert report["thresholds_changed"] == {"min_hours": {"value": 0.002, "default": 1.0}}
    assert report["not_checked"][-1]["check"] == "transcripts against speech recognition"


RECIPE = """\
name: glasgow
tags:
  en_glasgow: English with a Glasgow accent
codec: tiny
speaker_embedder: tiny
device: cpu
data:
  ingest:
    sources:
      - {{layout: contribution, path: {package}}}
  filter: {{min_seconds: 1.0, min_snr_db: 5.0}}
codec_check: {{enabled: false}}
generator:
  mode: lora
  model: {{init: tiny}}
  data: {{token_budget: 1024, val_speakers: 1, num_workers: 0}}
  trainer: {{max_steps: 2, precision: 32-true, val_every: 2, ckpt_every: 2, log_every: 1}}
  eval: {{prompts: 0, audio_clips: 0}}
  sampling: {{max_frames: 4}}
export: {{merged: false, adapter: true}}
eval: {{enabled: false}}
"""


@pytest.mark.slow
def test_a_recipe_trains_on_a_packaged_contribution_and_the_card_carries_its_licence(
        good, packaged, tmp_path):
    """The maintainer's path of docs/contributing-datasets.md: `contribute package`, then a
    recipe whose source is the package; the dataset keeps speakers, accent and transcripts, a
    speaker is held out, and the adapter card names the contribution's licence."""
    from kani_adapt import dataset
    from kani_adapt.cli.main import main as kani_adapt

    recipe = tmp_path / "glasgow.yaml"
    recipe.write_text(RECIPE.format(package=packaged))
    work = tmp_path / "work"
    assert kani_adapt(["check", str(recipe), f"work_dir={work}"]) == 0
    assert kani_adapt(["run", str(recipe), f"work_dir={work}"]) == 0
    state = json.loads((work / "stages.json").read_text())
    assert [s for s, v in state.items() if v["status"] == "done"] == ["speaker_model", "prepare",
                                                                       "train", "export"]
    layout = dataset.DatasetLayout.in_work(work / "data")
    rows = list(dataset.read(layout.hf))
    assert len(rows) == 12 and {r["tag"] for r in rows} == {"en_glasgow"}
    assert {r["speaker"] for r in rows} == {"s1", "s2", "s3"}
    # each row names the packaged row it came from (the source's name, then the row's id) and
    # keeps its speaker and text
    import pyarrow.parquet as pq

    packed = {f"glasgow-hf/{r['id']}": (r["speaker"], r["text"])
              for f in (packaged / "data").glob("*.parquet")
              for r in pq.read_table(f, columns=["id", "speaker", "text"]).to_pylist()}
    assert sorted(r["source"] for r in rows) == sorted(packed)
    assert all((r["speaker"], r["text"]) == packed[r["source"]] for r in rows)
    said = sorted((p.parent.name, p.read_text()) for p in (good / "audio").rglob("*.txt"))
    assert sorted(packed.values()) == said  # as the contributor wrote them
    assert "## Packaged contributions" in layout.report.read_text()
    stats = json.loads((work / "generator" / "data_stats.json").read_text())
    assert stats["sources"][0]["license"] == "cc-by-4.0" and len(stats["val_speakers_by_tag"]["en_glasgow"]) == 1
    card = (work / "export" / "adapter" / "README.md").read_text()
    assert "\nlicense: cc-by-4.0\n" in card
    assert "cc-by-4.0 (from the training data); training data: Test accent: cc-by-4.0" in card
