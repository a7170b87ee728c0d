"""Audio I/O of the data tools: the project's reader (kani_adapt.audio) with rejection codes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kani_adapt import audio as audio_io
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
    try:
        got = audio_io.read(path, sample_rate)
    except audio_io.AudioReadError as err:
        raise AudioError(err.reason, err.detail) from None
    return Loaded(got.audio, got.sample_rate, got.orig_sample_rate, got.channels)


resample = audio_io.resample


def probe(path: Path) -> audio_io.Probe:
    """Length and rate without decoding; raises AudioError (header_mismatch, ...)."""
    try:
        return audio_io.probe(path)
    except audio_io.AudioReadError as err:
        raise AudioError(err.reason, err.detail) from None


def write_clip(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit WAV written to a temporary name and renamed, so a clip is never half-written.

    Samples are clipped to [-1, 1] first: resampling can overshoot a clipped original, and
    16-bit conversion would wrap around instead of saturating.
    """
    from kani_adapt.atomic import write_audio

    write_audio(path, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def read_clip(path: Path) -> tuple[np.ndarray, int]:
    """A clip of the work folder (mono, written by ingest) and its sample rate."""
    got = audio_io.read(path, check_finite=False)
    return got.audio, got.sample_rate
