"""A run folder has one writer, and a stop signal ends training with a checkpoint at the step it
stopped and a non-zero exit. Real processes, real signals."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kani_adapt.cli.main import main
from tests.helpers import cpu_overrides

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _long_run(run, data):
    """Settings of a run that would go on for minutes, checkpointing rarely."""
    return cpu_overrides(run, data, **{"trainer.max_steps": 100000, "trainer.val_every": 100000,
                                       "trainer.ckpt_every": 100000, "data.num_workers": 1})


def _start(argv, env=None):
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "kani_adapt.cli.main", "train", *argv],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _logged_steps(run) -> list[int]:
    path = run / "csv" / "metrics.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [int(r[0]) for r in list(csv.reader(f))[1:] if len(r) == 3 and r[0].isdigit()]


def _wait_for_step(proc, run, step: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while max(_logged_steps(run), default=0) < step:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training never got going"
        time.sleep(0.2)


def _saved_step(run) -> int:
    return int(torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"])


def _stop_at(proc, run, step: int, send) -> str:
    """Once the run has logged ``step``, ``send()`` a signal; wait for the run to end, return
    its stderr (the process is killed whatever happens)."""
    try:
        _wait_for_step(proc, run, step)
        send()
        return proc.communicate(timeout=120)[1]
    finally:
        proc.kill()


def _stop_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("stopped by")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def test_sigterm_saves_the_current_step_and_a_second_run_is_refused(synth_data, tmp_path, capsys):
    run = tmp_path / "run"
    proc = _start(_long_run(run, synth_data))
    try:
        _wait_for_step(proc, run, 3)
        assert main(["train", *_long_run(run, synth_data)]) == 2  # the folder is held
        err = capsys.readouterr().err
        assert f"run folder {run} is in use by another kani-adapt train run (pid {proc.pid})" in err
        assert err.count("\n") == 1, err
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    line = _stop_line(err)
    step = int(line.split("at step ")[1].split(";")[0])
    assert line == f"stopped by SIGTERM at step {step}; rerun to resume"
    assert _saved_step(run) == step >= 3
    assert max(_logged_steps(run)) <= step  # nothing logged that the checkpoint does not hold
    assert not (run / "metrics.json").exists()  # an unfinished run is not reported as done
    # rerun to resume: it continues from that step (the same folder, now free)
    assert main(["train", *cpu_overrides(run, synth_data, **{
        "trainer.max_steps": step + 2, "trainer.val_every": 100000, "trainer.ckpt_every": 100000,
        "data.num_workers": 1})]) == 0
    assert f"(step {step})" in capsys.readouterr().err
    assert _saved_step(run) == step + 2


def test_ctrl_c_to_the_whole_process_group_stops_at_a_step(synth_data, tmp_path):
    run = tmp_path / "run"
    proc = _start(_long_run(run, synth_data))
    err = _stop_at(proc, run, 2, lambda: os.killpg(proc.pid, signal.SIGINT))  # workers too
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    step = int(_stop_line(err).split("at step ")[1].split(";")[0])
    assert _saved_step(run) == step


def test_sigusr1_under_slurm_checkpoints_and_requeues_the_job(synth_data, tmp_path):
    bin_dir, calls = tmp_path / "bin", tmp_path / "scontrol-calls"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "1", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_NAME": "train",
             "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    run = tmp_path / "run"
    proc = _start(_long_run(run, synth_data), env=slurm)
    err = _stop_at(proc, run, 2, lambda: proc.send_signal(signal.SIGUSR1))
    assert proc.returncode == 128 + signal.SIGUSR1, err[-3000:]
    line = _stop_line(err)
    assert line.endswith("rerun to resume; SLURM job 4242 requeued"), line
    assert calls.read_text().split() == ["requeue", "4242"]
    assert _saved_step(run) == int(line.split("at step ")[1].split(";")[0])
    assert not list(run.glob("hpc_ckpt_*"))  # one checkpoint, at a step boundary


def test_the_lock_of_a_killed_run_is_taken_over(synth_data, tmp_path):
    from kani_adapt.core import locks

    run = tmp_path / "run"
    args = cpu_overrides(run, synth_data, **{"trainer.max_steps": 100000, "trainer.ckpt_every": 2,
                                             "trainer.val_every": 100000, "data.num_workers": 0})
    proc = _start(args)
    try:
        _wait_for_step(proc, run, 3)
        while not (run / "checkpoints" / "last.ckpt").exists():
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    assert locks.holder(run / ".locks" / "run.lock") == str(proc.pid)  # left behind, stale
    step = _saved_step(run)
    args = [a for a in args if not a.startswith("trainer.max_steps=")]
    assert main(["train", *args, f"trainer.max_steps={step + 1}"]) == 0
    assert _saved_step(run) == step + 1
