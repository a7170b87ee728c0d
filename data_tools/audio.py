"""Audio I/O: read any soundfile format as mono float32, resample with soxr, write atomically."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kani_adapt.errors import DataError


class AudioError(DataError):
    """An unusable audio file; ``code`` is the rejection reason (unreadable_audio, ...)."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass
class Loaded:
    audio: np.ndarray  # mono float32, at ``sample_rate``
    sample_rate: int
    orig_sample_rate: int
    channels: int


def read_mono(path: Path, sample_rate: int | None = None) -> Loaded:
    """Read ``path`` (wav/flac/ogg/mp3 via libsndfile), average channels, optionally resample.

    Raises AudioError with its reason: unreadable_audio, empty_audio, nan_samples.
    """
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several types for corrupt files
        raise AudioError("unreadable_audio", f"{path}: {err}") from None
    if data.shape[0] == 0:
        raise AudioError("empty_audio", f"{path} has no samples")
    if not np.isfinite(data).all():
        raise AudioError("nan_samples", f"{path} contains NaN or infinite samples")
    audio = data.mean(axis=1).astype(np.float32)
    channels = data.shape[1]
    if sample_rate and rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
    return Loaded(audio, sample_rate or rate, rate, channels)


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    import soxr

    if rate_in == rate_out:
        return audio.astype(np.float32)
    return soxr.resample(audio, rate_in, rate_out).astype(np.float32)


def write_clip(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit WAV written to a temporary name and renamed, so a clip is never half-written.

    Samples are clipped to [-1, 1] first: resampling can overshoot a clipped original, and
    16-bit conversion would wrap around instead of saturating.
    """
    from kani_adapt.atomic import write_audio

    write_audio(path, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def read_clip(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32")
    return data, rate
