"""Speech from espeak-ng: the synthetic voices the tiny models are built from and the demo speaks.

espeak-ng (a Debian package) speaks about 100 languages with voice variants (``de+m3``,
``en-gb-scotland+f3``); its output is deterministic for a given version, so what is built from
it is repeatable on one machine.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kani_adapt.core.errors import ConfigError, DataError

SAMPLE_RATE = 22050  # what espeak-ng writes


def require() -> str:
    """The espeak-ng executable, or a one-line error saying how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError("espeak-ng is not installed (apt-get install espeak-ng; ./run installs it)")
    return exe


def version() -> str:
    """espeak-ng's version line (part of the identity of anything built from its speech)."""
    done = subprocess.run([require(), "--version"], capture_output=True, text=True)
    return done.stdout.strip()


def has_voice(voice: str) -> bool:
    """Whether espeak-ng speaks with ``voice`` (a language, a variant ``de+m3``), asked without
    speaking anything."""
    done = subprocess.run([require(), "-v", voice, "-q", ""], capture_output=True, text=True)
    return done.returncode == 0 and "does not exist" not in done.stderr


def write(text: str, voice: str, wav: Path, speed: int = 150) -> None:
    """Speak ``text`` with ``voice`` into the WAV file ``wav`` (22,050 Hz, 16 bit)."""
    done = subprocess.run([require(), "-v", voice, "-s", str(speed), "-w", str(wav), text],
                          capture_output=True, text=True)
    if done.returncode != 0 or not Path(wav).is_file() or not Path(wav).stat().st_size:
        raise DataError(f"espeak-ng -v {voice} failed: {done.stderr.strip()[:200]}")


def speak(text: str, voice: str = "en", speed: int = 150) -> np.ndarray:
    """``text`` spoken by ``voice`` as float32 mono at 22,050 Hz."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        write(text, voice, wav, speed)
        audio, rate = sf.read(wav, dtype="float32")
    if rate != SAMPLE_RATE:
        raise DataError(f"espeak-ng wrote {rate} Hz, expected {SAMPLE_RATE}")
    return audio
