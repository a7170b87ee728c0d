"""A stop signal during export or a data stage: no partial output, a non-zero exit, and the
rerun finishes the work (the signal is real: the process sends it to itself mid-write)."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import soundfile as sf

from kani_adapt.core import atomic
from kani_adapt.cli.main import main
from tests.hostile.refusals import files_under


def _temporaries(folder):
    return [p for p in files_under(folder) if atomic.MARK in p.name]


def _signal_on_call(monkeypatch, owner, name, signum, after: int = 0):
    """``owner.name`` raises ``signum`` at this process on its call number ``after``."""
    real, calls = getattr(owner, name), []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == after + 1:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from kani_adapt.training.synthetic import synthetic_dataset
    from tests.helpers import cpu_overrides

    tmp = tmp_path_factory.mktemp("stop")
    data = synthetic_dataset(tmp / "synth", n_speakers=2, per_speaker=3)
    run = tmp / "run"
    assert main(["train", *cpu_overrides(run, data, **{"trainer.max_steps": 2,
                                                        "data.num_workers": 0})]) == 0
    return run


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_export_leaves_no_partial_folder(trained_run, tmp_path, capsys,
                                                         monkeypatch, signum):
    import safetensors.torch

    from kani_adapt.models.generator import checkpoint

    out = tmp_path / "export"
    _signal_on_call(monkeypatch, checkpoint, "save_file", signum)
    assert main(["export", str(trained_run), "--out", str(out), "--merge"]) == 128 + signum
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == \
        f"stopped by {signal.Signals(signum).name}; rerun to resume", err
    assert not out.exists() and not _temporaries(tmp_path)
    monkeypatch.setattr(checkpoint, "save_file", safetensors.torch.save_file)
    assert main(["export", str(trained_run), "--out", str(out), "--merge"]) == 0
    assert (out / "model.safetensors").is_file()


def test_sigterm_during_a_data_stage_keeps_only_whole_results(tmp_path, capsys, monkeypatch):
    from data_tools.stages import ingest
    from data_tools.cli import main as data_main
    from data_tools.records import read_jsonl

    rate = 22050
    for i in range(4):
        path = tmp_path / "rec" / f"c{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.1 * np.sin(np.arange(rate) * (0.05 + 0.01 * i)), rate)
        path.with_suffix(".txt").write_text(f"clip number {i}")
    config = tmp_path / "data.yaml"
    config.write_text(f"work: {tmp_path / 'work'}\ningest:\n  sources:\n    - path: {tmp_path / 'rec'}\n")
    calls = _signal_on_call(monkeypatch, ingest, "write_clip", signal.SIGTERM, after=2)
    assert data_main(["ingest", str(config)]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "stopped by SIGTERM; rerun to resume"
    work = tmp_path / "work"
    assert len(calls) == 3 and not _temporaries(work)
    assert not (work / "ingest" / "manifest.jsonl").exists()  # the stage did not finish
    assert len(list((work / "ingest" / "audio").rglob("*.wav"))) == 2  # whole clips only
    monkeypatch.undo()
    assert data_main(["ingest", str(config)]) == 0
    kept = list(read_jsonl(work / "ingest" / "manifest.jsonl"))
    assert sorted(u["text"] for u in kept) == [f"clip number {i}" for i in range(4)]
