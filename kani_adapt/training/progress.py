"""One console line per log interval for Lightning runs (generator and codec training).

Lightning's progress bar joins its updates with carriage returns, which turns a log file or a CI
page into one unreadable line; on a terminal it is fine. So runs show the bar only on a TTY and
this callback logs ``step 120/4000  loss 3.412  2,310 tok/s  ETA 1:02:13`` otherwise (and on a
TTY too when the bar is off). Values are read at the log interval only: no host sync per step.
"""
from __future__ import annotations

import logging
import time

from lightning.pytorch.callbacks import Callback

from kani_adapt.console import hms

log = logging.getLogger("kani_adapt.train")


class ProgressLog(Callback):
    def __init__(self, every: int, loss_key: str = "train/loss",
                 rate_key: str | None = "train/real_tokens_per_s", rate_unit: str = "tok/s",
                 steps_per_update: int = 1):
        self.every = max(1, every) * steps_per_update
        self.steps_per_update = steps_per_update  # GAN runs count two optimizer steps a batch
        self.loss_key, self.rate_key, self.rate_unit = loss_key, rate_key, rate_unit
        self._start: float | None = None
        self._start_step = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start, self._start_step = time.monotonic(), trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or step == self._start_step or (
                step % self.every and step != trainer.max_steps):
            return
        log.info(self.line(trainer))

    def line(self, trainer) -> str:
        k = self.steps_per_update
        step, total = trainer.global_step // k, trainer.max_steps // k
        metrics = trainer.callback_metrics
        parts = [f"step {step}/{total}" if total and total > 0 else f"step {step}"]
        if self.loss_key in metrics:
            parts.append(f"loss {float(metrics[self.loss_key]):.4f}")
        if self.rate_key and self.rate_key in metrics:
            parts.append(f"{float(metrics[self.rate_key]):,.0f} {self.rate_unit}")
        if self._start is not None and total and total > 0:
            done = step - self._start_step // k
            per_step = (time.monotonic() - self._start) / max(done, 1)
            parts.append(f"ETA {hms(per_step * (total - step))}")
        return "  ".join(parts)
