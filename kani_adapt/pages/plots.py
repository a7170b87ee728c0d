"""Pictures for TensorBoard (generator samples, codec validation) and for the HTML reports' players:
the one spectrogram renderer.

A report's picture of an audio file shows at most its first ``PICTURE_SECONDS``, decoded no
further (:func:`picture_of`): a recording of hours costs a page what a clip costs.
matplotlib (Agg, no display) is imported only when a picture is drawn.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np

PICTURE_SECONDS = 30.0  # a longer recording is pictured by its start


def render(draw: Callable, xlabel: str, ylabel: str, title: str | None = None) -> np.ndarray:
    """What ``draw(ax)`` puts on one small axes, as an RGB float array (H, W, 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.5), dpi=80)
    draw(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return plt.imread(buf)[..., :3]


def spectrogram_image(audio: np.ndarray, sample_rate: int, title: str | None = None) -> np.ndarray:
    """A spectrogram (1024-point frames, hop 256) as an RGB array for ``add_image(..., "HWC")``."""
    def draw(ax):
        # the tiny offset keeps log10 finite on digital silence
        ax.specgram(np.asarray(audio, dtype=np.float64) + 1e-9, NFFT=1024, Fs=sample_rate,
                    noverlap=768, cmap="magma")
    return render(draw, "seconds", "Hz", title)


def spectrogram_png(audio: np.ndarray, sample_rate: int, path) -> None:
    """A small log-magnitude spectrogram picture (no axes) for the players of the HTML reports;
    drawn with numpy and saved as a PNG without building a matplotlib figure (fast)."""
    from matplotlib.image import imsave

    from kani_adapt.core.atomic import write_file

    x = np.asarray(audio, dtype=np.float64)
    n_fft, hop = 512, 128
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    db = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).T + 1e-6)
    db = np.clip(db - db.max(), -80, 0)[::-1]  # low frequencies at the bottom
    write_file(path, lambda tmp: imsave(tmp, db, cmap="magma", vmin=-80, vmax=0, format="png"))


def picture_of(wav, png, max_seconds: float = PICTURE_SECONDS) -> float:
    """The spectrogram PNG of the first ``max_seconds`` of the audio file ``wav``, decoded no
    further; the seconds pictured."""
    from kani_adapt.audio import read

    clip = read(wav, max_seconds=max_seconds, check_finite=False)
    spectrogram_png(clip.audio, clip.sample_rate, png)
    return len(clip.audio) / clip.sample_rate

