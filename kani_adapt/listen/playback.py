"""Loudness-matched playback: every stimulus is brought to one integrated loudness (ITU-R
BS.1770 through pyloudnorm) before it is served, so that listeners judge the speech, not the
level. The low anchor is the hidden reference low-passed at 3.5 kHz (the MUSHRA anchor of
ITU-R BS.1534)."""
from __future__ import annotations

import io
import threading
from collections import OrderedDict

import numpy as np

from kani_adapt.audio import TARGET_LUFS, matched
from kani_adapt.listen.material import ANCHOR, REFERENCE, Material

ANCHOR_HZ = 3500.0
CACHED = 512  # stimuli kept in memory (the most recently served)


def low_anchor(audio: np.ndarray, rate: int, cutoff: float = ANCHOR_HZ) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    if len(audio) < 64:
        return np.asarray(audio, dtype=np.float32)
    sos = butter(8, min(cutoff, rate / 2 * 0.95), fs=rate, output="sos")
    return sosfiltfilt(sos, np.asarray(audio, dtype=np.float64)).astype(np.float32)


class Playback:
    """WAV bytes of (system, item) stimuli, loudness-matched, the last ``CACHED`` kept."""

    def __init__(self, material: Material, target: float = TARGET_LUFS):
        self.material, self.target = material, target
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _audio(self, system: str, item: str) -> tuple[np.ndarray, int]:
        from kani_adapt.audio import read

        it = self.material.items[item]
        if system in (REFERENCE, ANCHOR):
            clip = read(it.reference, check_finite=False)
            audio = clip.audio if system == REFERENCE else low_anchor(clip.audio, clip.sample_rate)
            return audio, clip.sample_rate
        clip = read(self.material.clips[(system, item)], check_finite=False)
        return clip.audio, clip.sample_rate

    def wav(self, system: str, item: str) -> bytes:
        key = (system, item)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        import soundfile as sf

        audio, rate = self._audio(system, item)
        buf = io.BytesIO()
        sf.write(buf, np.clip(matched(audio, rate, self.target), -1, 1), rate, format="WAV",
                 subtype="PCM_16")
        data = buf.getvalue()
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        return data
