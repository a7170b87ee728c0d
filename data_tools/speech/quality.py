"""Per-clip measurements the filter decides on; pure functions over numpy arrays."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_SECONDS = 0.02
FINGERPRINT_POINTS = 64


@dataclass
class Features:
    duration: float
    clipped_fraction: float  # samples at (or within 0.1 % of) full scale
    snr_db: float  # loud frames (95th percentile) over quiet frames (10th percentile)
    peak_db: float  # level of the loudest frames
    silence_ratio: float  # frames more than 35 dB below the loud frames
    chars_per_second: float
    fingerprint: list[float]  # energy envelope at fixed points, mean removed, unit length


def frame_db(audio: np.ndarray, rate: int, seconds: float = FRAME_SECONDS) -> np.ndarray:
    size = max(1, int(rate * seconds))
    n = max(1, len(audio) // size)
    frames = np.resize(audio[: n * size], (n, size)) if len(audio) >= size else audio[None, :]
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def clipped_fraction(audio: np.ndarray) -> float:
    return float(np.mean(np.abs(audio) >= 0.999)) if len(audio) else 0.0


def fingerprint(levels: np.ndarray) -> list[float]:
    """Gain-invariant energy envelope: re-encoded or re-levelled copies of a clip match."""
    x = np.interp(np.linspace(0, len(levels) - 1, FINGERPRINT_POINTS), np.arange(len(levels)),
                  np.maximum(levels, levels.max() - 60))
    x = x - x.mean()
    norm = np.linalg.norm(x)
    return (x / norm if norm > 0 else x).round(5).tolist()


def measure(audio: np.ndarray, rate: int, text: str) -> Features:
    levels = frame_db(audio, rate)
    loud, quiet = np.percentile(levels, 95), np.percentile(levels, 10)
    duration = len(audio) / rate
    letters = sum(not c.isspace() for c in text)
    return Features(
        duration=duration,
        clipped_fraction=clipped_fraction(audio),
        snr_db=float(loud - quiet),
        peak_db=float(loud),
        silence_ratio=float(np.mean(levels < loud - 35)),
        chars_per_second=letters / duration if duration else 0.0,
        fingerprint=fingerprint(levels),
    )
