"""The CSV metrics log after a resume: every (step, metric) once, labelled with its real step."""
from __future__ import annotations

from collections import Counter

import pytest

from kani_adapt.training.csvlog import StepCSVLogger, read_log


def _attempt(path, resume_step, events):
    """Log ``events`` [(step, {name: value})] as a run resumed at ``resume_step`` would."""
    log = StepCSVLogger(path, resume_step=resume_step)
    now = [resume_step]
    log.step_of = lambda: now[0]
    for step, metrics in events:
        now[0] = step
        log.log_metrics(metrics, step=12345)  # Lightning's own counter is ignored
    log.finalize("success")


def test_a_resumed_log_keeps_old_steps_redoes_later_ones_and_never_repeats(tmp_path):
    path = tmp_path / "metrics.csv"
    first = [(0, {"lr": 1.0}), (1, {"loss": 9.0}), (1, {"lr": 0.9}), (2, {"loss": 8.0}),
             (2, {"lr": 0.8}), (3, {"loss": 7.0}), (3, {"lr": 0.7}), (3, {"val": 6.5})]
    _attempt(path, 0, first)  # killed after step 3; its last checkpoint is step 2
    again = [(2, {"lr": 0.8}), (2, {"val": 7.5}), (3, {"loss": 7.0}), (3, {"lr": 0.7}),
             (4, {"loss": 6.0})]
    _attempt(path, 2, again)
    rows = read_log(path)
    assert not [k for k, n in Counter((s, name) for s, name, _ in rows).items() if n > 1]
    assert [(s, v) for s, name, v in rows if name == "loss"] == [(1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0)]
    assert [(s, v) for s, name, v in rows if name == "val"] == [(2, 7.5)]  # 3's val was not redone
    assert [s for s, name, _ in rows if name == "lr"] == [0, 1, 2, 3]
    assert [s for s, _, _ in rows] == sorted(s for s, _, _ in rows)


def test_a_run_that_resumes_at_its_last_step_keeps_that_step_once(tmp_path):
    path = tmp_path / "metrics.csv"
    _attempt(path, 0, [(1, {"loss": 2.0}), (2, {"loss": 1.0}), (2, {"val": 1.5})])
    _attempt(path, 2, [(2, {"val": 1.5})])  # nothing more to train, the validation is redone
    assert sorted(read_log(path)) == [(1, "loss", 2.0), (2, "loss", 1.0), (2, "val", 1.5)]


def test_a_log_killed_before_compaction_is_repaired_when_reopened(tmp_path):
    path = tmp_path / "metrics.csv"
    _attempt(path, 0, [(1, {"loss": 2.0}), (2, {"loss": 1.0}), (2, {"lr": 0.5})])
    killed = StepCSVLogger(path, resume_step=2)
    killed.step_of = lambda: 2
    killed.log_metrics({"lr": 0.25})  # then kill -9: no finalize, no compaction
    killed._file.close()
    with path.open("a") as f:
        f.write("3,loss,0.")  # a torn last line
    _attempt(path, 2, [(3, {"loss": 0.5})])
    assert read_log(path) == [(1, "loss", 2.0), (2, "loss", 1.0), (2, "lr", 0.25), (3, "loss", 0.5)]


@pytest.mark.slow
def test_a_rewound_and_resumed_run_logs_what_an_uninterrupted_run_logs(tmp_path, synth_data, base_ckpt):
    import shutil

    from kani_adapt.cli.main import main
    from tests.helpers import cpu_overrides

    common = {"model.init": base_ckpt, "trainer.max_steps": 4, "trainer.ckpt_every": 2,
              "trainer.val_every": 2, "trainer.keep_checkpoints": -1}
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert main(["train", *cpu_overrides(straight, synth_data, **common)]) == 0
    args = cpu_overrides(broken, synth_data, **common)
    assert main(["train", *args]) == 0
    # As if killed after step 4 was logged but before its checkpoint landed.
    ckpts = broken / "checkpoints"
    (ckpts / "step-0000004.ckpt").unlink()
    shutil.copy(ckpts / "step-0000002.ckpt", ckpts / "last.ckpt")
    assert main(["train", *args]) == 0

    def table(run):
        return {(s, n): v for s, n, v in read_log(run / "csv" / "metrics.csv")
                if "tokens_per_s" not in n}  # wall-clock rates differ by nature

    rows = read_log(broken / "csv" / "metrics.csv")
    assert not [k for k, n in Counter((s, name) for s, name, _ in rows).items() if n > 1]
    a, b = table(straight), table(broken)
    assert a.keys() == b.keys()
    assert max(s for s, n in a if n == "train/loss") == 4
    assert [k for k in a if k[1].startswith(("train/loss", "val/loss")) and a[k] != b[k]] == []
