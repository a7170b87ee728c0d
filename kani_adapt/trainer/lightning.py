"""The Lightning plumbing both trainers share (generator: ``kani_adapt.training.fit``, codec:
``kani_adapt.training.codec.train``): one Trainer builder, the progress line, and the lookup of
the TensorBoard writer that samples and evaluation clips are logged to.

:func:`build_trainer` is the one place a ``lightning.Trainer`` is made: the device resolved as
every config spells it, TensorBoard events in ``run_dir/tb`` (a resumed run appends to them),
checkpoints read without unpickling (:class:`kani_adapt.trainer.resume.SafeCheckpointIO`), the
progress bar on a terminal only, no sanity validation, no model summary. What differs between
the trainers (checkpointing, validation cadence, gradient clipping) comes in as callbacks and
Lightning options.

Every trainer it builds carries a :class:`StopOnSignal`: SIGTERM, SIGINT or SIGUSR1 during the
fit ends it at a step boundary instead of killing it (Lightning's own SIGTERM handling ends the
fit quietly, so the command would exit 0, and its SLURM handler checkpoints in the middle of a
step). After ``fit`` the caller saves a checkpoint at that step and calls
``stop_signal(trainer).raise_if_stopped(step)``, which requeues a SLURM job on SIGUSR1 and
raises :class:`kani_adapt.core.stopping.Stopped` ("stopped by SIGTERM at step N; rerun to resume").

:class:`ProgressLog` writes one console line per log interval, because Lightning's progress bar
joins its updates with carriage returns, which turns a log file or a CI page into one
unreadable line; on a terminal the bar is fine. So runs show the bar only on a TTY and the
callback logs ``step 120/4000  loss 3.412  2,310 tok/s  ETA 1:02:13`` otherwise (and on a TTY
too when the bar is off). Values are read at the log interval only: no host sync per step.
"""
from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from kani_adapt.core import stopping
from kani_adapt.core.console import doing, hms
from kani_adapt.core.devices import for_lightning
from kani_adapt.trainer.resume import SafeCheckpointIO

log = logging.getLogger("kani_adapt.train")


class ProgressLog(Callback):
    def __init__(self, every: int, loss_key: str = "train/loss",
                 rate_key: str | None = "train/real_tokens_per_s", rate_unit: str = "tok/s",
                 steps_per_update: int = 1, name: str = "training", began: float | None = None):
        self.every = max(1, every) * steps_per_update
        self.name, self.began = name, began  # began: time.monotonic() when the set-up started
        self.steps_per_update = steps_per_update  # GAN runs count two optimizer steps a batch
        self.loss_key, self.rate_key, self.rate_unit = loss_key, rate_key, rate_unit
        self._start: float | None = None
        self._start_step = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start, self._start_step = time.monotonic(), trainer.global_step
        if trainer.is_global_zero:  # said before the first step: the set-up is over
            k, setup = self.steps_per_update, ""
            if self.began is not None:
                setup = f" (set up in {self._start - self.began:.0f} s)"
            log.info("%s: step %d of %d starting%s", self.name, trainer.global_step // k + 1,
                     trainer.max_steps // k, setup)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        doing(f"at step {trainer.global_step // self.steps_per_update + 1} of "
              f"{trainer.max_steps // self.steps_per_update}")

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            doing(f"validating at step {trainer.global_step // self.steps_per_update}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        first = step - self._start_step == self.steps_per_update  # said at once: it started
        if not trainer.is_global_zero or step == self._start_step or (
                step % self.every and step != trainer.max_steps and not first):
            return
        log.info(self.line(trainer, outputs))

    def on_validation_end(self, trainer, pl_module) -> None:
        """The validation results, as they come (not only in TensorBoard)."""
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        found = {k: float(v) for k, v in trainer.callback_metrics.items()
                 if k.startswith(("val", "eval")) and getattr(v, "numel", lambda: 1)() == 1}
        if found:
            log.info("validation at step %d: %s", trainer.global_step // self.steps_per_update,
                     "  ".join(f"{k} {v:.4f}" for k, v in sorted(found.items())))

    def line(self, trainer, outputs=None) -> str:
        k = self.steps_per_update
        step, total = trainer.global_step // k, trainer.max_steps // k
        metrics = trainer.callback_metrics
        parts = [f"step {step}/{total}" if total and total > 0 else f"step {step}"]
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self.loss_key in metrics:
            parts.append(f"loss {float(metrics[self.loss_key]):.4f}")
        elif loss is not None and getattr(loss, "numel", lambda: 0)() == 1:  # from the first step
            parts.append(f"loss {float(loss):.4f}")
        if self.rate_key and self.rate_key in metrics:
            parts.append(f"{float(metrics[self.rate_key]):,.0f} {self.rate_unit}")
        if self._start is not None and total and total > 0:
            done = step - self._start_step // k
            per_step = (time.monotonic() - self._start) / max(done, 1)
            parts.append(f"ETA {hms(per_step * (total - step))}")
        return "  ".join(parts)


class StopOnSignal(Callback):
    """Notes a stop signal during the fit; every rank stops at the end of the same batch."""

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
        note = (stopping.requeue_slurm_job() if self.signum == signal.SIGUSR1 and is_global_zero
                else "")
        raise stopping.Stopped(self.signum, step, note)


def stop_signal(trainer: L.Trainer) -> StopOnSignal:
    """The :class:`StopOnSignal` of a trainer :func:`build_trainer` made."""
    return next(c for c in trainer.callbacks if isinstance(c, StopOnSignal))


def build_trainer(run_dir: Path, *, device: str, precision: str, max_steps: int,
                  callbacks: Sequence[Callback] = (), loggers: Sequence = (),
                  preloaded: dict | None = None, gpus_per_node: int = 1, **options) -> L.Trainer:
    """The Lightning trainer of a run in ``run_dir``. ``device`` is a config's device (auto,
    cpu, cuda, cuda:N, mps); ``gpus_per_node`` when it names no one GPU; ``preloaded`` the
    checkpoint state already read with weights_only (``{path: state}``); ``options`` the
    Lightning arguments that differ between the trainers. A :class:`StopOnSignal` is added."""
    accelerator, gpus = for_lightning(device)
    return L.Trainer(
        default_root_dir=run_dir, max_steps=max_steps, accelerator=accelerator,
        devices=gpus or gpus_per_node, precision=precision,
        logger=[TensorBoardLogger(run_dir, name="tb", version=""), *loggers],
        plugins=[SafeCheckpointIO(preloaded)],  # resume never unpickles
        callbacks=[*callbacks, StopOnSignal()],
        enable_progress_bar=sys.stderr.isatty(),  # carriage-return bars garble logs and CI
        num_sanity_val_steps=0, enable_model_summary=False, **options)


def tensorboard(module):
    """The TensorBoard writer (``SummaryWriter``) of a LightningModule's trainer, or None."""
    for logger in module.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None
