"""espeak-ng speech and noise at a chosen SNR, for the scorer tests and the data tools' quality tests."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ENGLISH = ["the bus to the city centre leaves at nine",
           "it is a lovely day for a walk by the river",
           "we are going to the shops before they close",
           "i will see you at the match on saturday"]


def speak(text: str, folder: Path, voice: str = "en", name: str = "clip") -> tuple[np.ndarray, int]:
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    path = Path(folder) / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    audio, rate = sf.read(path, dtype="float32")
    return audio, rate


def with_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    noise *= np.sqrt(np.mean(audio ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    mixed = audio + noise
    return mixed / max(1.0, float(np.abs(mixed).max()))
