"""Fixtures for scorer tests: espeak-ng speech, noise at a chosen SNR, one tiny Whisper."""
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


@pytest.fixture(scope="session")
def english_clips(tmp_path_factory) -> tuple[list[np.ndarray], int]:
    folder = tmp_path_factory.mktemp("espeak")
    clips = [speak(t, folder, name=f"en{i}") for i, t in enumerate(ENGLISH)]
    return [c for c, _ in clips], clips[0][1]


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    from tests.scorers.whisper_twin import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")
