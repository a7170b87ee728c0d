"""A stop signal during training: finish the step, checkpoint there, exit non-zero.

:class:`StopOnSignal` notes SIGTERM, SIGINT or SIGUSR1 instead of dying (it replaces the
handlers Lightning set for the fit: Lightning's own SIGTERM handling ends the fit quietly and
the command then exits 0, and its SLURM handler checkpoints in the middle of a step). At the
end of the current batch every rank stops at the same step; the caller saves ``last.ckpt``
and calls :meth:`StopOnSignal.raise_if_stopped`, which requeues a SLURM job on SIGUSR1 and
raises :class:`kani_adapt.stopping.Stopped` ("stopped by SIGTERM at step N; rerun to resume").
"""
from __future__ import annotations

import signal

from lightning.pytorch.callbacks import Callback

from kani_adapt import stopping
from kani_adapt.stopping import Stopped, requeue_slurm_job


class StopOnSignal(Callback):
    def __init__(self):
        self.signum: int | None = None
        self._old: dict = {}

    def _note(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def on_train_start(self, trainer, pl_module) -> None:
        self._old = stopping.install(self._note)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        asked = self.signum is not None
        if trainer.world_size > 1:  # all ranks stop at the same step, or DDP would hang
            asked = trainer.strategy.reduce_boolean_decision(asked, all=False)
        if asked:
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        stopping.restore(self._old)
        self._old = {}

    def raise_if_stopped(self, step: int, is_global_zero: bool = True) -> None:
        """After the checkpoint of ``step`` is saved: the stop, as an exception."""
        if self.signum is None:
            return
        note = requeue_slurm_job() if self.signum == signal.SIGUSR1 and is_global_zero else ""
        raise Stopped(self.signum, step, note)
