"""Pictures for TensorBoard and the pages: the one spectrogram renderer (generator samples,
codec validation, the players of the HTML reports) and learning curves (the data-budget plan).

A report's picture of an audio file shows at most its first ``PICTURE_SECONDS``, decoded no
further (:func:`picture_of`): a recording of hours costs a page what a clip costs.
matplotlib (Agg, no display) is imported only when a picture is drawn.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
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


@dataclass
class CurvePicture:
    """A learning curve: measured points with their intervals, a fitted curve with its band,
    and horizontal lines (a target, an anchor), on a log x axis."""

    title: str
    xlabel: str
    ylabel: str
    points: list[tuple[float, float, float, float]]  # x, y, low, high
    curve: tuple[list[float], list[float]] | None = None  # x, y
    band: tuple[list[float], list[float], list[float]] | None = None  # x, low, high
    lines: list[tuple[float, str]] = field(default_factory=list)  # y, label
    point_label: str = "measured (95 % interval)"


POINT_COLOUR = "#1f3fbf"  # the measured points' markers (tests find them by it)


def curve_png(picture: CurvePicture, path) -> list[dict]:
    """Draw ``picture`` into a PNG at ``path``; the measured points as drawn: their data and
    the pixel (column, row from the top) of each marker's centre, also written into the PNG's
    text chunk ``points`` (JSON), so a reader can check the picture carries them."""
    import json
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from kani_adapt.core.atomic import write_file

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if picture.band:
        ax.fill_between(picture.band[0], picture.band[1], picture.band[2], color="#f0a040",
                        alpha=0.25, linewidth=0, label="curve, 95 % band (eval speakers)")
    if picture.curve:
        ax.plot(picture.curve[0], picture.curve[1], color="#d06000", label="fitted curve")
    for (value, label), style in zip(picture.lines, ("--", ":", "-.", "--")):
        ax.axhline(value, linestyle=style, color="#444444", linewidth=1, label=label)
    xs, ys = [p[0] for p in picture.points], [p[1] for p in picture.points]
    low = [max(p[1] - p[2], 0.0) for p in picture.points]
    high = [max(p[3] - p[1], 0.0) for p in picture.points]
    ax.errorbar(xs, ys, yerr=[low, high], fmt="o", color=POINT_COLOUR, markersize=7, capsize=3,
                label=picture.point_label, zorder=5)
    ax.set_xscale("log")
    ax.set_xlabel(picture.xlabel)
    ax.set_ylabel(picture.ylabel)
    ax.set_title(picture.title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.canvas.draw()
    height = fig.canvas.get_width_height()[1]
    drawn = []
    for x, y in zip(xs, ys):
        col, row = ax.transData.transform((x, y))
        drawn.append({"x": x, "y": y, "column": int(round(col)), "row": int(round(height - row))})
    meta = {"points": json.dumps(drawn)}
    write_file(Path(path), lambda tmp: fig.savefig(tmp, format="png", metadata=meta))
    return drawn
