"""Stop signals end a command with an honest exit code, never a silent success.

SIGTERM (``timeout``, ``docker stop``, SLURM preemption), SIGINT (Ctrl-C) and SIGUSR1 (SLURM's
warning signal, ``#SBATCH --signal=USR1@120``) all mean "stop". Outside training, a stop signal
raises :class:`Stopped` where the command is: every file or folder being written is removed on
the way out (``kani_adapt.core.atomic`` writes to a temporary first), so nothing partial is left,
and the command exits with 128 + the signal number. Training catches the signal itself
(``kani_adapt.trainer.lightning.StopOnSignal``): it finishes the current step, saves a checkpoint there and
then raises :class:`Stopped` with that step. Under SLURM, a SIGUSR1 also requeues the job
(as Lightning's SLURM environment does), so the requeued job resumes from that checkpoint.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class Stopped(BaseException):
    """A stop signal arrived (a BaseException: no ``except Exception`` swallows it)."""

    def __init__(self, signum: int, step: int | None = None, note: str = ""):
        self.signum, self.step = int(signum), step
        where = f" at step {step}" if step is not None else ""
        super().__init__(f"stopped by {signal.Signals(signum).name}{where}; rerun to resume{note}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum, frame):
    raise Stopped(signum)


_ours: set = set()  # handlers installed through this module


def install(handler) -> dict:
    """``handler`` for every stop signal (main thread only); returns what to ``restore``."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    _ours.add(handler)
    return {s: signal.signal(s, handler) for s in STOP_SIGNALS}


def restore(old: dict) -> None:
    for s, handler in old.items():
        signal.signal(s, handler)


def _in_forked_child() -> None:
    """A forked helper (a data-loader worker) leaves stopping to the process that forked it:
    Ctrl-C and SIGUSR1 reach the whole group and are ignored there, SIGTERM (how its parent
    ends it) kills it as usual."""
    for s in STOP_SIGNALS:
        if signal.getsignal(s) in _ours:
            signal.signal(s, signal.SIG_DFL if s == signal.SIGTERM else signal.SIG_IGN)


os.register_at_fork(after_in_child=_in_forked_child)


@contextmanager
def raise_on_signals():
    """While inside, a stop signal raises :class:`Stopped` in the main thread; the previous
    handlers come back afterwards. Outside the main thread, nothing changes."""
    old = install(_raise)
    try:
        yield
    finally:
        restore(old)


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes for this job (array jobs: ``JOB_TASK``), if any."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}" if array else \
        os.environ.get("SLURM_JOB_ID")
    return job if job and re.fullmatch(r"[0-9_]+", job) else None


def requeue_slurm_job() -> str:
    """Requeue this SLURM job (the command Lightning's SLURM environment runs on its requeue
    signal); returns a note for the stop line ('' outside SLURM)."""
    job = slurm_job_id()
    if job is None:
        return ""
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f" (could not requeue SLURM job {job}: {err}; resubmit it)"
    if done.returncode:
        return f" (requeueing SLURM job {job} failed: {done.stderr.strip()[:120]}; resubmit it)"
    return f"; SLURM job {job} requeued"
