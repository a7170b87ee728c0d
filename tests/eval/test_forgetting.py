"""Stopping a run when the base language gets worse (the forgetting line at each validation)."""
import json

import pytest

from kani_adapt.cli.main import main
from kani_adapt.config.load import load_config
from kani_adapt.core.errors import ConfigError
from kani_adapt.config.sampling import SamplingConfig
from kani_adapt.eval.callback import EvalCallback
from kani_adapt.eval.config import TrainingEvalConfig
from kani_adapt.training.synthetic import synthetic_dataset
from tests.helpers import cpu_overrides


def watcher(tmp_path, metric="cer", tolerance=0.05, patience=2, baseline=0.10):
    cfg = TrainingEvalConfig(base_prompts=1, stop_on_forgetting=metric,
                             forgetting_tolerance=tolerance, forgetting_patience=patience)
    cb = EvalCallback(cfg, None, codec=None, run_dir=tmp_path, sampling=SamplingConfig(seed=0))
    cb.baseline = baseline
    return cb


def test_the_run_stops_after_patience_validations_in_a_row_past_the_tolerance(tmp_path):
    cb = watcher(tmp_path)
    assert [cb.forgetting(v, step) for step, v in ((10, 0.20), (20, 0.12), (30, 0.16))] == [False] * 3
    assert cb.strikes == 1  # 0.12 is within 0.05 of 0.10: the count started again
    assert cb.forgetting(0.30, 40) is True
    stopped = json.loads((tmp_path / "stopped.json").read_text())
    assert stopped == {"step": 40, "reason": "forgetting", "metric": "cer", "before": 0.10,
                       "now": 0.30, "tolerance": 0.05, "patience": 2}


def test_a_higher_is_better_metric_counts_a_drop_as_worse(tmp_path):
    cb = watcher(tmp_path, metric="dnsmos_ovrl", tolerance=0.1, patience=1, baseline=3.0)
    assert cb.forgetting(3.5, 1) is False and cb.forgetting(2.95, 2) is False  # better; within
    assert cb.forgetting(2.8, 3) is True


def test_an_unmeasured_value_neither_stops_nor_counts(tmp_path):
    cb = watcher(tmp_path, patience=1)
    assert cb.forgetting(None, 1) is False and cb.strikes == 0
    cb.baseline = None  # nothing measured before training: never stops
    assert cb.forgetting(0.9, 2) is False and not (tmp_path / "stopped.json").exists()


def test_the_watch_state_survives_a_resume_as_plain_numbers(tmp_path):
    cb = watcher(tmp_path)
    cb.forgetting(0.3, 5)
    again = watcher(tmp_path, baseline=None)
    again.load_state_dict(cb.state_dict())
    assert (again.baseline, again.strikes) == (0.10, 1)
    assert all(isinstance(v, (int, float)) for v in cb.state_dict().values())


def test_stop_on_forgetting_needs_base_rows_and_a_metric_the_scorers_give(tmp_path, synth_data, base_ckpt,
                                                                          capsys):
    with pytest.raises(ConfigError, match="stop_on_forgetting needs base_prompts >= 1"):
        load_config(TrainingEvalConfig, None, ["stop_on_forgetting=cer"])
    args = cpu_overrides(tmp_path / "run", synth_data, **{
        "model.init": base_ckpt, "codec": "tiny", "data.replay": synth_data,
        "eval.base_prompts": 1, "eval.stop_on_forgetting": "cer"})
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert "eval.stop_on_forgetting='cer' is not a metric the configured scorers give" in err, err
    args = cpu_overrides(tmp_path / "run2", synth_data, **{"model.init": base_ckpt, "codec": "tiny",
                                                            "eval.base_prompts": 1})
    assert main(["train", *args]) == 2
    assert "eval.base_prompts > 0 needs data.replay" in capsys.readouterr().err


@pytest.mark.slow
def test_a_training_run_stops_when_the_base_language_gets_worse_and_a_rerun_keeps_the_stop(
        tmp_path, synth_data, base_ckpt, monkeypatch, caplog, capsys):
    replay = synthetic_dataset(tmp_path / "replay", n_speakers=2, per_speaker=6, seed=3)
    calls = []

    def scripted(self, model, which=""):  # the base language: 0.1 before training, then 0.4
        calls.append(which)
        value = 0.1 if len(calls) == 1 else 0.4
        return ({"failure": value} if which == "base_" else {"failure": 0.0}), []

    monkeypatch.setattr(EvalCallback, "evaluate", scripted)
    run = tmp_path / "run"
    args = cpu_overrides(run, synth_data, **{
        "model.init": base_ckpt, "codec": "tiny", "data.replay": replay, "data.replay_ratio": 0.2,
        "trainer.max_steps": 8, "trainer.val_every": 2, "eval.prompts": 1, "eval.base_prompts": 1,
        "eval.stop_on_forgetting": "failure", "eval.forgetting_tolerance": 0.1})
    assert main(["train", *args]) == 0
    assert "stopped early at step 2: base-language failure 0.1000 -> 0.4000" in capsys.readouterr().out
    assert calls[0] == "base_"  # measured before the first step
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["steps"] == 2, summary  # the first validation stopped it, not max_steps
    assert summary["stopped_early"]["before"] == 0.1 and summary["stopped_early"]["now"] == 0.4
    assert summary["metrics"]["eval/base_failure"] == pytest.approx(0.4)
    assert (run / "checkpoints" / "last.ckpt").exists()
    n = len(calls)
    with caplog.at_level("WARNING", logger="kani_adapt.train"):
        assert main(["train", *args]) == 0  # the same command again: reported, not undone
    assert len(calls) == n and "remove" in caplog.text and "stopped.json" in caplog.text
    assert json.loads((run / "metrics.json").read_text())["steps"] == 2


@pytest.mark.parametrize("metric", ["corpus_cer", "similarity_norm", "onset_entropy"])
def test_a_metric_the_report_computes_cannot_be_monitored_during_training(metric):
    from kani_adapt.eval.callback import eval_callbacks
    from kani_adapt.scorers.config import ScorerConfig

    cfg = TrainingEvalConfig(prompts=1, monitor=metric,
                             scorers=ScorerConfig(asr="a", speaker_embedder="b"))
    with pytest.raises(ConfigError, match=rf"eval.monitor='{metric}' is not a metric the "
                                          r"configured scorers give at each validation; choose "
                                          r"from failure, dnsmos_p808.*, cer, wer"):
        eval_callbacks(cfg, [0], codec=None, sampling=SamplingConfig())
