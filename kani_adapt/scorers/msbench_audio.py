"""Upstream's benchmark protocol for audio (make-speech-benchmark v2): every clip a scorer hears is
made mono, resampled to 16 kHz with soxr at its HQ setting, trimmed with Silero VAD from the
first speech start minus 50 ms to the last speech end plus 50 ms (pauses inside are kept), and
peak-normalised to -1 dBFS.

Where this differs from upstream: the VAD is the ``silero-vad`` wheel installed here (upstream's
build trimmed its anchors with Silero through torch.hub, a different wrapper version; its
eval-side trim uses the wheel as here), run with the wrapper's default thresholds; soxr is the
installed version (HQ either way). A clip in which the VAD finds no speech is kept whole, as
upstream does.
"""
from __future__ import annotations

import numpy as np

RATE = 16000
PAD_SECONDS = 0.05
PEAK_DBFS = -1.0

_VAD: dict = {}


def _vad():
    """Silero VAD from its wheel, loaded once (``import silero_vad`` sets torch to one thread:
    the count is put back)."""
    if "model" not in _VAD:
        import torch

        threads = torch.get_num_threads()
        try:
            from silero_vad import get_speech_timestamps, load_silero_vad

            _VAD.update(model=load_silero_vad(), timestamps=get_speech_timestamps)
        finally:
            torch.set_num_threads(threads)
    return _VAD["model"], _VAD["timestamps"]


def speech_span(audio: np.ndarray, rate: int = RATE) -> tuple[int, int] | None:
    """(first speech start, last speech end) in samples, None when the VAD hears no speech."""
    import torch

    model, timestamps = _vad()
    with torch.no_grad():
        spans = timestamps(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), model,
                           sampling_rate=rate)
    model.reset_states()
    return (int(spans[0]["start"]), int(spans[-1]["end"])) if spans else None


def trim(audio: np.ndarray, rate: int = RATE) -> np.ndarray:
    span = speech_span(audio, rate)
    if span is None:
        return audio
    pad = int(PAD_SECONDS * rate)
    start, end = max(0, span[0] - pad), min(len(audio), span[1] + pad)
    return audio[start:end] if end > start else audio


def peak_normalised(audio: np.ndarray, dbfs: float = PEAK_DBFS) -> np.ndarray:
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak <= 0:
        return audio
    return (audio * (10 ** (dbfs / 20) / peak)).astype(np.float32)


def prepare(audio: np.ndarray, rate: int) -> np.ndarray:
    """mono -> 16 kHz (soxr HQ) -> VAD trim with 50 ms either side -> peak at -1 dBFS."""
    import soxr

    from kani_adapt.audio import to_mono

    mono = np.asarray(to_mono(np.asarray(audio)), dtype=np.float32)
    if rate != RATE and mono.size:
        mono = soxr.resample(mono, rate, RATE, quality="HQ").astype(np.float32)
    return peak_normalised(trim(mono) if mono.size else mono)
