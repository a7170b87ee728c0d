"""Synthetic speech-like audio and NeMo manifests of it, for the codec tests and codec training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SR = 22050


def tone(seconds: float, freq: float, seed: int = 0, noise: float = 0.01) -> np.ndarray:
    """A vibrato tone with a little noise: speech-like enough to have harmonics and an envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * freq * t + 3 * np.sin(2 * np.pi * 5 * t)
    x = 0.3 * np.sin(phase) + 0.1 * np.sin(2 * phase) + noise * rng.standard_normal(len(t))
    return (x * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def write_corpus(folder: Path, speakers=("anna", "ben"), clips_per_speaker=2, seconds=1.0,
                 rate=SR, tags=("de", "en")) -> Path:
    """WAV files plus a NeMo manifest with speaker and tag (relative paths, as data tools write)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for s, speaker in enumerate(speakers):
        for i in range(clips_per_speaker):
            name = f"{speaker}_{i}.wav"
            audio = tone(seconds, 150 + 60 * s + 20 * i, seed=10 * s + i)
            if rate != SR:
                import soxr
                audio = soxr.resample(audio, SR, rate)
            sf.write(folder / name, audio, rate)
            lines.append(json.dumps({"audio_filepath": name, "duration": seconds, "speaker": speaker,
                                     "tag": tags[s % len(tags)], "text": "la"}))
    manifest = folder / "manifest.json"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
