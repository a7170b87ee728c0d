"""Audio files in the formats phones and browsers record, encoded with the FFmpeg inside the
PyAV wheel (m4a/aac, opus, webm, wma), for tests of the readers."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

# suffix -> (container format, codec, sample rate the codec takes)
FORMATS = {".m4a": ("ipod", "aac", 22050), ".aac": ("adts", "aac", 22050),
           ".opus": ("ogg", "libopus", 48000), ".webm": ("webm", "libopus", 48000),
           ".wma": ("asf", "wmav2", 22050)}


def encode(path: Path, audio: np.ndarray, rate: int) -> Path:
    """Mono float ``audio`` at ``rate`` written to ``path`` in the format its suffix names."""
    import av

    fmt, codec, codec_rate = FORMATS[path.suffix]
    if codec_rate != rate:
        from kani_adapt.audio import resample

        audio, rate = resample(audio, rate, codec_rate), codec_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = 32000
        frame = av.AudioFrame.from_ndarray(np.asarray(audio, np.float32)[None, :], format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def video_only(path: Path, frames: int = 5) -> Path:
    """An .mp4 holding one small video stream and no audio."""
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(frames):
            image = np.full((32, 32, 3), 20 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
