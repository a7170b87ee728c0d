"""Small audio plumbing the scorers share: mono float arrays and resampling."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from kani_adapt.audio import resample, to_mono

SCORER_RATE = 16000  # Whisper, DNSMOS and the speaker models all take 16 kHz


def to_rate(audio: np.ndarray, rate: int, target: int = SCORER_RATE) -> np.ndarray:
    """Mono float32 at ``target``; a (T, C) array is averaged over channels."""
    audio = to_mono(audio)
    return audio if rate == target else resample(audio, rate, target)


def all_to_rate(audios: Sequence[np.ndarray], rate: int, target: int = SCORER_RATE) -> list[np.ndarray]:
    return [to_rate(a, rate, target) for a in audios]

