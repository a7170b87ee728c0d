"""The run's CSV metrics log: one file, one row per (step, metric), each step labelled once.

``csv/metrics.csv`` holds ``step,name,value`` rows, where ``step`` is the number of optimizer
steps completed when the value was logged (the same number as the checkpoint names). Lightning's
own step counter is not used: after a resume it is one off, so a resumed run repeated one step
and mislabelled the last.

Resuming from the checkpoint of step S keeps the rows of steps up to S and drops the rows after
S (the resumed run computes them again). A metric the resumed run logs again at step S (the
validation that was due, the next learning rate) replaces its old row: the file is compacted
once the run moves past S (or ends), and on every open, so a run killed in between is repaired
the next time. No (step, metric) pair is left twice.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Callable

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from kani_adapt.core import atomic

HEADER = ["step", "name", "value"]


class StepCSVLogger(Logger):
    def __init__(self, path: Path, resume_step: int = 0):
        super().__init__()
        self.path = Path(path)
        self.resume_step = resume_step
        self.step_of: Callable[[], int] | None = None  # set to the trainer's global step
        self._held: set[str] | None = None
        self._relogged = False
        self._file = None

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass  # config.yaml in the run folder records them

    def _open(self) -> None:
        rows = [r for r in _dedupe(_read_rows(self.path)) if int(r[0]) <= self.resume_step]
        atomic.write_text(self.path, _rows_text([HEADER] + rows))
        self._held = {name for step, name, _ in rows if int(step) == self.resume_step}
        self._relogged = False
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        if self._file is None:
            self._open()
        now = self.step_of() if self.step_of is not None else int(step or 0)
        if now > self.resume_step:
            self._compact()
        for name, value in metrics.items():
            if name == "epoch":  # Lightning adds it to every call; the step says when
                continue
            value = float(value)
            if now == self.resume_step and self._held and name in self._held:
                self._relogged = True
            self._writer.writerow([now, name, repr(value) if math.isfinite(value) else str(value)])
        self._file.flush()  # a killed run keeps every row it logged

    def _compact(self) -> None:
        """Drop the old rows of step S that the resumed run logged again (once)."""
        if self._relogged:
            self._file.close()
            atomic.write_text(self.path, _rows_text([HEADER] + _dedupe(_read_rows(self.path))))
            self._file = self.path.open("a", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
        self._held, self._relogged = None, False

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._file is not None:
            self._compact()
            self._file.close()
            self._file = None


def _read_rows(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return [r for r in rows[1:] if len(r) == 3 and r[0].lstrip("-").isdigit()]  # a torn line is dropped


def _dedupe(rows: list[list[str]]) -> list[list[str]]:
    """The last row of every (step, name), in the order of those last rows."""
    last = {(r[0], r[1]): i for i, r in enumerate(rows)}
    return [r for i, r in enumerate(rows) if last[(r[0], r[1])] == i]


def _rows_text(rows: list[list]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def read_log(path: Path) -> list[tuple[int, str, float]]:
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [(int(r["step"]), r["name"], float(r["value"])) for r in csv.DictReader(f)]
