"""Voice files: the 128 floats KaniTTS2 is conditioned on, saved with numpy (``.npy``).

``kani-adapt speaker-emb`` writes them (the mean of one or more references' embeddings),
``kani-adapt generate --speaker-emb`` and eval items (``embedding``) read them, and so does the
official runtime (``numpy.load``, then a [1, 128] tensor). Light: numpy only, no model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kani_adapt.core.errors import DataError

SIZE = 128  # floats per voice (the embedder's embd_size)


def load_speaker_embedding(path: Path) -> np.ndarray:
    """A 128-float vector from a .npy file; errors name the file and the fix."""
    try:
        vec = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read a numpy array ({err}); save one with numpy.save") from err
    if np.size(vec) != SIZE or not np.issubdtype(np.asarray(vec).dtype, np.number):
        raise DataError(f"{path}: need {SIZE} floats, got shape {np.shape(vec)} ({np.asarray(vec).dtype})")
    vec = np.asarray(vec, dtype=np.float32).reshape(SIZE)
    if not np.all(np.isfinite(vec)):
        raise DataError(f"{path}: the speaker embedding contains NaN or infinite values")
    return vec


def mean_voice(vectors: np.ndarray) -> np.ndarray:
    """The mean of unit vectors, scaled back to unit length."""
    mean = vectors.mean(0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-6:
        raise DataError("the references' embeddings cancel out; use recordings of one speaker")
    return (mean / norm).astype(np.float32)
