"""Small audio plumbing the scorers share: mono float arrays, resampling, length batches."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from kani_adapt.errors import DataError

SCORER_RATE = 16000  # Whisper, DNSMOS and the speaker models all take 16 kHz


def to_rate(audio: np.ndarray, rate: int, target: int = SCORER_RATE) -> np.ndarray:
    """Mono float32 at ``target``; a (T, C) array is averaged over channels."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.ndim != 1:
        raise DataError(f"audio must be 1-d (samples) or 2-d (samples, channels), got {audio.shape}")
    if rate == target or audio.size == 0:
        return audio
    import soxr

    return soxr.resample(audio, rate, target).astype(np.float32)


def all_to_rate(audios: Sequence[np.ndarray], rate: int, target: int = SCORER_RATE) -> list[np.ndarray]:
    return [to_rate(a, rate, target) for a in audios]


def length_batches(lengths: Sequence[int], batch_size: int, groups: Sequence = ()) -> list[list[int]]:
    """Indices batched by similar length (longest first); items of different ``groups`` never
    share a batch (Whisper decodes one forced language per batch)."""
    keys = list(groups) if groups else [None] * len(lengths)
    order = sorted(range(len(lengths)), key=lambda i: (str(keys[i]), -lengths[i]))
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and keys[batches[-1][0]] == keys[i]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def pick_device(device: str = "auto") -> str:
    """'auto' means the first CUDA device when there is one, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def padded(audios: Sequence[np.ndarray]):
    """[B, T] float tensor (zero padded) and the valid lengths [B]."""
    import torch

    lengths = torch.tensor([len(a) for a in audios], dtype=torch.long)
    batch = torch.zeros(len(audios), int(lengths.max()) if len(audios) else 0)
    for i, a in enumerate(audios):
        batch[i, :len(a)] = torch.from_numpy(np.asarray(a, dtype=np.float32))
    return batch, lengths
