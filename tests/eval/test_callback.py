"""The validation-time eval callback inside a real tiny training run."""
import json

import pytest

from kani_adapt.cli.main import main
from tests.helpers import cpu_overrides


def _scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = {}
    for events in run_dir.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"audio": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            tags[tag] = [e.value for e in acc.Scalars(tag)]
        tags.update({t: None for t in acc.Tags()["audio"]})
    return tags


@pytest.mark.slow
def test_training_logs_eval_metrics_and_audio_at_validation(tmp_path, synth_data, base_ckpt):
    run = tmp_path / "run"
    args = cpu_overrides(run, synth_data, **{"model.init": base_ckpt, "codec": "tiny",
                                             "eval.prompts": 2, "sampling.max_frames": 4,
                                             "eval.scorers.dnsmos_threads": 1,
                                             "eval.monitor": "dnsmos_p808"})
    assert main(["train", *args]) == 0
    tags = _scalars(run)
    for metric in ("eval/dnsmos_p808", "eval/failure"):
        assert metric in tags and len(tags[metric]) == 1, sorted(tags)
    assert 1.0 <= tags["eval/dnsmos_p808"][0] <= 5.0
    assert "eval/audio_0" in tags
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert "eval/dnsmos_p808" in metrics  # visible to checkpoint monitors
    best = list((run / "checkpoints").glob("best-*dnsmos_p808*.ckpt"))
    assert len(best) == 1, sorted(p.name for p in (run / "checkpoints").iterdir())


def test_monitoring_an_unknown_eval_metric_is_refused(tmp_path, synth_data, base_ckpt, capsys):
    args = cpu_overrides(tmp_path / "run", synth_data, **{"model.init": base_ckpt, "codec": "tiny",
                                                           "eval.prompts": 1, "eval.monitor": "mos"})
    assert main(["train", *args]) == 2
    assert "eval.monitor='mos' is not an eval metric" in capsys.readouterr().err


def test_eval_prompts_without_a_codec_is_refused(tmp_path, synth_data, base_ckpt, capsys):
    args = cpu_overrides(tmp_path / "run", synth_data, **{"model.init": base_ckpt, "eval.prompts": 2})
    assert main(["train", *args]) == 2
    assert "eval.prompts > 0 needs codec" in capsys.readouterr().err
