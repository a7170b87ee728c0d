"""Audio I/O for the whole project: read any libsndfile format as mono float32, resample with soxr.

The data tools, the codec trainer and checker, the scorers, the speaker embedder and evaluation
all read and resample here (writes go through :func:`kani_adapt.atomic.write_audio`;
:func:`write_clip` is the data tools' 16-bit clip). A file that cannot be used raises
:class:`AudioReadError`, a one-line :class:`DataError` whose ``reason`` the data tools record
as the rejection code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kani_adapt.errors import DataError

UNREADABLE, EMPTY, NOT_FINITE = "unreadable_audio", "empty_audio", "nan_samples"


class AudioReadError(DataError):
    """An unusable audio file; ``reason`` is one of UNREADABLE, EMPTY, NOT_FINITE."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass
class Audio:
    audio: np.ndarray  # mono float32 at ``sample_rate``
    sample_rate: int
    orig_sample_rate: int  # the file's rate, before resampling
    channels: int  # the file's channel count, before averaging


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float32 ``audio`` at ``rate_out`` (soxr, high quality); a copy when nothing changes."""
    if rate_in == rate_out or np.asarray(audio).size == 0:
        return np.asarray(audio).astype(np.float32)
    import soxr

    return soxr.resample(audio, rate_in, rate_out).astype(np.float32)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """float32 samples; a (samples, channels) array is averaged over its channels."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1).astype(np.float32)
    if audio.ndim != 1:
        raise DataError(f"audio must be 1-d (samples) or 2-d (samples, channels), got {audio.shape}")
    return audio


def read(path: str | Path, sample_rate: int | None = None, *, offset_seconds: float = 0.0,
         max_seconds: float | None = None, check_finite: bool = True) -> Audio:
    """``path`` (wav/flac/ogg/mp3 via libsndfile) as mono float32, resampled to ``sample_rate``
    (``None``: the file's own), optionally the window ``offset_seconds`` .. ``+max_seconds``."""
    import soundfile as sf

    try:
        start, frames = 0, -1
        if offset_seconds or max_seconds is not None:
            rate = sf.info(str(path)).samplerate
            start = int(offset_seconds * rate)
            frames = -1 if max_seconds is None else int(np.ceil(max_seconds * rate))
        data, rate = sf.read(str(path), start=start, frames=frames, dtype="float32",
                             always_2d=True)
    except Exception as err:  # libsndfile raises several types for unreadable files
        raise AudioReadError(UNREADABLE, f"{path}: cannot read audio ({err}); give a wav, flac "
                                         "or ogg file") from None
    if data.shape[0] == 0:
        raise AudioReadError(EMPTY, f"{path}: no audio samples")
    if check_finite and not np.isfinite(data).all():
        raise AudioReadError(NOT_FINITE, f"{path} contains NaN or infinite samples")
    target = sample_rate or rate
    audio = resample(to_mono(data), rate, target)
    if max_seconds is not None:
        audio = audio[: int(max_seconds * target)]
        if len(audio) == 0:
            raise AudioReadError(EMPTY, f"{path}: no audio samples")
    return Audio(audio, target, rate, data.shape[1])


def padded(audios):
    """A [B, T] float32 tensor of mono clips, zero padded at the end, and their lengths [B]."""
    import torch

    lengths = torch.tensor([len(a) for a in audios], dtype=torch.long)
    batch = torch.zeros(len(audios), int(lengths.max()) if len(audios) else 0)
    for row, audio in enumerate(audios):
        batch[row, :len(audio)] = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    return batch, lengths


def read_clip(path: str | Path) -> tuple[np.ndarray, int]:
    """A clip the data tools wrote (mono, finite already) at its own rate."""
    got = read(path, check_finite=False)
    return got.audio, got.sample_rate


def write_clip(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """A 16-bit WAV clip of the data tools, written to a temporary name and renamed.

    Samples are clipped to [-1, 1] first: resampling can overshoot a clipped original, and
    16-bit conversion would wrap around instead of saturating.
    """
    from kani_adapt.atomic import write_audio

    write_audio(path, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def to_rate(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Mono float32 at ``target``; a (T, C) array is averaged over channels."""
    audio = to_mono(audio)
    return audio if rate == target else resample(audio, rate, target)


def all_to_rate(audios: Sequence[np.ndarray], rate: int, target: int) -> list[np.ndarray]:
    return [to_rate(a, rate, target) for a in audios]
