"""Test doubles that travel to Ray workers (pickled there, imported by module name): models
whose process dies at a chosen call, once, and that count every call in a file."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from dt_helpers import EnergyCodec


def _count(folder: Path, line: str) -> None:
    with open(folder / "calls", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def calls(folder: Path) -> list[str]:
    path = Path(folder) / "calls"
    return path.read_text().splitlines() if path.exists() else []


class Dies:
    """Kills its own process (SIGKILL, as the OOM killer or a lost node would) at its
    ``at``-th call in that process, once per ``folder`` (a marker file says it happened)."""

    def __init__(self, folder: Path, at: int):
        self.folder, self.at, self.seen = Path(folder), at, 0

    def maybe_die(self) -> None:
        self.seen += 1
        marker = self.folder / "died"
        if self.seen == self.at and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

    @property
    def died(self) -> bool:
        return (self.folder / "died").exists()


class DyingVAD(Dies):
    """Speech wherever the 16 kHz signal is above a quiet floor (deterministic)."""

    def __call__(self, audio16k: np.ndarray) -> list[tuple[float, float]]:
        _count(self.folder, f"vad {len(audio16k)}")
        self.maybe_die()
        loud = np.flatnonzero(np.abs(audio16k) > 0.02)
        return [(loud[0] / 16000, (loud[-1] + 1) / 16000)] if len(loud) else []


class DyingCodec(EnergyCodec, Dies):
    """The energy codec; counts each batch it encodes (its size) and may die first."""

    def __init__(self, folder: Path, at: int = 0, delay: float = 0.0):
        EnergyCodec.__init__(self)
        Dies.__init__(self, folder, at)
        self.delay = delay

    def encode(self, audio, lengths):
        _count(self.folder, f"encode {len(audio)}")
        self.maybe_die()
        time.sleep(self.delay)
        return EnergyCodec.encode(self, audio, lengths)
