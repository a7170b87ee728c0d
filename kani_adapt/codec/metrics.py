"""Round-trip quality metrics: pure functions of a reference and an estimate (1-D numpy arrays).

The estimate is cut to the reference length first, since the codec pads to whole frames.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop) at 22.05 kHz
EPS = 1e-8
MIN_STOI_SECONDS = 0.5  # STOI needs 30 analysis frames of 25.6 ms after silence removal


def _pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    est = np.asarray(est, dtype=np.float64).reshape(-1)
    if len(est) < len(ref):
        est = np.pad(est, (0, len(ref) - len(est)))
    return ref, est[: len(ref)]


def _magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| [frames, bins] with a Hann window; short signals are zero-padded to one window."""
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    return np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=-1))


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)


def mel_distance(ref, est, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 80) -> float:
    """Mean absolute difference of log10 mel spectrograms (0 = identical; ~1 = an order of
    magnitude off per band)."""
    ref, est = _pair(ref, est)
    basis = _mel_basis(sample_rate, n_fft, n_mels)
    mel_ref = np.log10(_magnitude(ref, n_fft, hop) @ basis.T + 1e-5)
    mel_est = np.log10(_magnitude(est, n_fft, hop) @ basis.T + 1e-5)
    return float(np.mean(np.abs(mel_ref - mel_est)))


def stft_distance(ref, est, resolutions=STFT_RESOLUTIONS) -> float:
    """Multi-resolution STFT distance: spectral convergence plus log-magnitude L1, averaged over
    resolutions (0 = identical)."""
    ref, est = _pair(ref, est)
    total = 0.0
    for n_fft, hop in resolutions:
        mag_ref, mag_est = _magnitude(ref, n_fft, hop), _magnitude(est, n_fft, hop)
        convergence = np.linalg.norm(mag_ref - mag_est) / (np.linalg.norm(mag_ref) + EPS)
        log_l1 = np.mean(np.abs(np.log(mag_ref + 1e-5) - np.log(mag_est + 1e-5)))
        total += convergence + log_l1
    return float(total / len(resolutions))


def si_sdr(ref, est) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (higher is better)."""
    ref, est = _pair(ref, est)
    ref = ref - ref.mean()
    est = est - est.mean()
    scale = np.dot(est, ref) / (np.dot(ref, ref) + EPS)
    target = scale * ref
    noise = est - target
    return float(10 * np.log10((np.dot(target, target) + EPS) / (np.dot(noise, noise) + EPS)))


def stoi(ref, est, sample_rate: int) -> float:
    """Short-time objective intelligibility (pystoi), 0..1; NaN when the clip is too short or
    silent for STOI to be defined."""
    from pystoi import stoi as pystoi_stoi

    ref, est = _pair(ref, est)
    if len(ref) < MIN_STOI_SECONDS * sample_rate:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pystoi warns (and returns ~1e-5) on too-short input
        try:
            value = float(pystoi_stoi(ref, est, sample_rate, extended=False))
        except (ValueError, IndexError):  # nothing left after pystoi drops silent frames
            return float("nan")
    return value if value > 1e-4 else float("nan")


def all_metrics(ref, est, sample_rate: int) -> dict[str, float]:
    return {
        "mel": mel_distance(ref, est, sample_rate),
        "stft": stft_distance(ref, est),
        "si_sdr": si_sdr(ref, est),
        "stoi": stoi(ref, est, sample_rate),
    }
