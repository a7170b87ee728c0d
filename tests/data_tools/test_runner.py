"""The one stage runner, driven by a toy stage: what a new stage gets without writing it."""
import json
import logging

import pytest

from data_tools import registry, runner
from kani_adapt.core.console import progress
from data_tools.cli import build_parser
from data_tools.config import DataConfig
from data_tools.records import Utterance, read_jsonl
from kani_adapt.core import atomic
from data_tools.stages.kit import BaseStage, Kept, Rejected
from kani_adapt.core.errors import ConfigError, DataError


class Shout(BaseStage):
    """A model stage in miniature: batches of two, rejects items whose text says 'bad'."""

    name, help, model = "shout", "upper-case every transcript", True
    inputs = ("ingest",)

    def __init__(self):
        self.seen: list[str] = []
        self.opened = 0

    def open(self, ctx):
        self.opened += 1

    def batches(self, ctx, todo):
        return [todo[i:i + 2] for i in range(0, len(todo), 2)]

    def process(self, ctx, batch):
        self.seen += [u.id for u in batch]
        return {u.id: Rejected("bad_text", f"text {u.text!r}") if "bad" in u.text else
                Kept([Utterance(u.id + "/up", u.audio, u.text.upper(), u.speaker)])
                for u in batch}


@pytest.fixture
def shout(monkeypatch):
    stage = Shout()
    real = registry.stages()
    monkeypatch.setattr(registry, "stages", lambda: real[:1] + [stage] + real[1:])
    return stage


def plant_inputs(work, n=20, bad=(3, 11)):
    rows = [Utterance(f"src/s/c{i:02d}", f"x{i}.wav", "bad one" if i in bad else f"text {i}",
                      "s").to_dict() for i in range(n)]
    atomic.write_jsonl(work / "ingest" / "manifest.jsonl", rows)
    return [r["id"] for r in rows]


def test_shards_merge_without_loss_or_duplicates_and_rejections_carry_their_code(tmp_path, shout):
    ids = plant_inputs(tmp_path)
    cfg = DataConfig(work=str(tmp_path))
    parts = [runner.run_stage(shout, cfg, (i, 3)) for i in range(3)]
    assert [p.complete for p in parts] == [False, False, True]  # the last shard completes it
    assert sorted(shout.seen) == sorted(ids) and len(shout.seen) == len(set(shout.seen))
    kept = [u.id for u in parts[-1].kept]
    assert kept == [i + "/up" for i in ids if i[-2:] not in ("03", "11")]  # input order
    rejected = list(read_jsonl(tmp_path / "rejected.jsonl"))
    assert [(r["id"], r["stage"], r["reason"]) for r in rejected] == [
        ("src/s/c03", "shout", "bad_text"), ("src/s/c11", "shout", "bad_text")]
    assert rejected[0]["detail"] == "text 'bad one'"
    again = runner.run_stage(shout, cfg)  # everything done: nothing processed, nothing opened
    assert len(shout.seen) == len(ids) and shout.opened == 3 and again.kept == parts[-1].kept


def test_an_unfinished_sharded_stage_blocks_the_stages_after_it(tmp_path, shout, monkeypatch):
    plant_inputs(tmp_path)
    cfg = DataConfig(work=str(tmp_path))
    runner.run_stage(shout, cfg, (0, 2))
    assert not (tmp_path / "shout" / "manifest.jsonl").exists()
    nxt = Shout()
    nxt.name, nxt.inputs = "next", ("shout", "ingest")
    with pytest.raises(DataError, match="shout has not finished.*every shard"):
        runner.run_stage(nxt, cfg)


def test_changed_settings_restart_the_stage_and_the_budget_counts_rejections(tmp_path, shout,
                                                                               monkeypatch):
    plant_inputs(tmp_path, n=4, bad=(0, 1, 2))
    cfg = DataConfig(work=str(tmp_path), max_rejected_fraction=0.8)
    runner.run_stage(shout, cfg)
    monkeypatch.setattr(Shout, "settings", lambda self, ctx: {"version": 2})
    cfg.max_rejected_fraction = 0.5
    with pytest.raises(DataError, match="rejected 3 of 4 items.*max_rejected_fraction=0.5"):
        runner.run_stage(shout, cfg)
    assert len(shout.seen) == 8  # redone from scratch, and the rejections still recorded
    assert len(list(read_jsonl(tmp_path / "shout" / "rejected.jsonl"))) == 3
    with pytest.raises(DataError, match="settings differ"):  # a shard never deletes others' work
        monkeypatch.setattr(Shout, "settings", lambda self, ctx: {"version": 3})
        runner.run_stage(shout, cfg, (0, 2))


def test_only_model_stages_take_shards():
    with pytest.raises(ConfigError, match="runs whole"):
        runner.run_stage("filter", DataConfig(), (0, 2))
    assert [s.name for s in registry.stages() if s.model] == [
        "segment", "transcribe", "align", "embed", "tokenize"]


def test_cli_subcommands_and_prepare_follow_the_registry():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    stage_names = registry.names()
    assert list(commands)[: len(stage_names)] == stage_names
    assert " -> ".join(stage_names) in parser.description
    for name in stage_names:
        has_shard = any(a.dest == "shard" for a in commands[name]._actions)
        assert has_shard == registry.get(name).model
    # a stage's input is the nearest earlier chain stage: segment reads ingest, filter reads
    # align before segment before ingest, and the branches read filter
    assert registry.inputs_of(registry.get("filter")) == ("align", "transcribe", "segment",
                                                          "ingest")
    assert registry.inputs_of(registry.get("tokenize")) == ("filter",)


def test_progress_without_a_terminal_is_one_line_per_interval(caplog):
    caplog.set_level(logging.INFO, logger="kani_adapt")
    batches = [[1, 2], [3], [4, 5]]
    assert list(progress(batches, "embed", "clip", every=0.0, size=len)) == batches
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and lines[-1].startswith("embed: 5/5 clips (100 %)")
    caplog.clear()
    list(progress(batches, "embed", "clip", every=3600.0, size=len))
    assert [r.getMessage()[:14] for r in caplog.records] == ["embed: 5/5 cli"]  # only the end


def test_a_log_holding_items_twice_is_read_once(tmp_path, shout):
    ids = plant_inputs(tmp_path, n=4, bad=())
    cfg = DataConfig(work=str(tmp_path))
    runner.run_stage(shout, cfg)
    log = tmp_path / "shout" / "log-00000-of-00001.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines + lines))  # two writers appended the same work
    again = runner.run_stage(shout, cfg)
    assert [u.id for u in again.kept] == [i + "/up" for i in ids]
    manifest = [json.loads(x)["id"] for x in (tmp_path / "shout" / "manifest.jsonl").open()]
    assert manifest == [i + "/up" for i in ids]


def test_a_stage_without_a_terminal_prints_progress_lines_not_bars(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    (tmp_path / "rec").mkdir()
    for i in range(2):
        sf.write(tmp_path / "rec" / f"c{i}.wav", np.zeros(22050, np.float32), 22050)
        (tmp_path / "rec" / f"c{i}.txt").write_text("words")
    (tmp_path / "data.yaml").write_text("work: work\ningest:\n  sources:\n    - path: rec\n")
    done = subprocess.run([sys.executable, "-m", "data_tools.cli", "ingest",
                           str(tmp_path / "data.yaml")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert done.returncode == 0, done.stderr
    assert "ingest: 2/2 files (100 %)" in done.stderr and "\r" not in done.stderr
    assert "ingest: 2 clips kept" in done.stdout


def test_a_stage_that_writes_transcripts_lets_ingest_keep_clips_without_one(tmp_path,
                                                                             monkeypatch):
    import numpy as np
    import soundfile as sf

    from data_tools.inputs.layouts import SourceConfig

    from data_tools.stages.ingest import IngestConfig

    rec = tmp_path / "rec" / "s"
    rec.mkdir(parents=True)
    for name in ("told", "untold"):
        sf.write(rec / f"{name}.wav", np.zeros(22050, np.float32), 22050)
    (rec / "told.txt").write_text("given words")
    cfg = DataConfig(work=str(tmp_path / "work"),
                     ingest=IngestConfig(sources=[SourceConfig(path=str(tmp_path / "rec"))]))
    cfg.max_rejected_fraction = 1.0
    kept = runner.run_stage("ingest", cfg).kept
    assert [u.text for u in kept] == ["given words"]  # no transcriber: a record for the other
    asr = Shout()
    asr.name, asr.writes_text = "asr", True
    real = registry.stages()
    monkeypatch.setattr(registry, "stages", lambda: real[:2] + [asr] + real[2:])
    kept = runner.run_stage("ingest", cfg).kept  # settings changed: ingest redone
    assert sorted(u.text for u in kept) == ["", "given words"]
    assert registry.inputs_of(registry.get("filter")) == ("align", "transcribe", "asr", "segment",
                                                          "ingest")


def test_a_model_stage_sees_the_device_auto_resolves_to_for_its_process(tmp_path, shout, monkeypatch):
    import torch

    class OnDevice(Shout):
        section, device = "embed", "device"

        def open(self, ctx):
            self.device = ctx.cfg.embed.device

    stage = OnDevice()
    plant_inputs(tmp_path, n=2, bad=())
    cfg = DataConfig(work=str(tmp_path))
    assert cfg.embed.device == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")  # the second process of a torchrun on this node
    runner.run_stage(stage, cfg)
    assert stage.device == "cuda:1"
    assert cfg.embed.device == "auto"  # the caller's config is left as it was
