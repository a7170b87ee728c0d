"""Recordings of hours in bounded memory: copied into the work folder block by block, read
back lazily, searched for speech a block at a time.

A 3-hour file is 950 MB of float32 samples at 22050 Hz, several times that through resampling
and conversion. Ingest streams a libsndfile-readable file longer than ``STREAM_SECONDS``
straight into its clip (downmixed, resampled with soxr's streaming resampler, clipped, written
as 16-bit WAV) instead of loading it; segment reads a work-folder clip through
:class:`ClipFile` (slices are read from disk when asked for) and runs the VAD over blocks of
``BLOCK_SECONDS``, joining the spans that a block edge cut in two.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

STREAM_SECONDS = 600.0  # longer files are streamed, never loaded whole
BLOCK_SECONDS = 600.0  # audio handled at a time
VAD_RATE = 16000


class ClipFile:
    """A mono clip on disk that slices like an array (``clip[a:b]`` reads those samples)."""

    def __init__(self, path: Path):
        import soundfile as sf

        self.path = Path(path)
        info = sf.info(str(self.path))
        self.rate, self.frames = info.samplerate, info.frames

    def __len__(self) -> int:
        return self.frames

    def __getitem__(self, index: slice) -> np.ndarray:
        import soundfile as sf

        start, stop, _ = index.indices(self.frames)
        data, _ = sf.read(str(self.path), start=start, stop=max(start, stop), dtype="float32",
                          always_2d=True)
        return data.mean(axis=1).astype(np.float32) if data.shape[1] > 1 else data[:, 0]


def stream_clip(src: Path, dest: Path, rate: int) -> tuple[int, int, int]:
    """``src`` as mono 16-bit WAV at ``rate`` in ``dest``, a block at a time; returns (frames
    written, the file's rate, its channels). Raises ValueError on NaN or infinite samples."""
    import soundfile as sf
    import soxr

    from kani_adapt.core.atomic import write_file

    written = [0]
    with sf.SoundFile(str(src)) as f:
        orig, channels = f.samplerate, f.channels
        block = int(BLOCK_SECONDS * orig)

        def write(tmp: Path) -> None:
            stream = soxr.ResampleStream(orig, rate, 1, dtype="float32")
            with sf.SoundFile(str(tmp), "w", rate, 1, "PCM_16", format="WAV") as out:
                while True:
                    data = f.read(block, dtype="float32", always_2d=True)
                    last = len(data) < block
                    if not np.isfinite(data).all():
                        raise ValueError(f"{src} contains NaN or infinite samples")
                    mono = data.mean(axis=1).astype(np.float32)
                    piece = stream.resample_chunk(mono, last=last) if orig != rate else mono
                    out.write(np.clip(piece, -1.0, 1.0))
                    written[0] += len(piece)
                    if last:
                        return

        write_file(dest, write)
    return written[0], orig, channels


def speech_spans(clip, rate: int, vad) -> list[tuple[float, float]]:
    """``vad`` (16 kHz audio -> spans in seconds) over ``clip`` a block at a time; spans that
    meet at a block edge are joined. A clip shorter than a block is one call, as before."""
    from kani_adapt.audio import resample

    block = int(BLOCK_SECONDS * rate)
    spans: list[tuple[float, float]] = []
    for start in range(0, max(len(clip), 1), block):
        offset = start / rate
        piece = resample(np.asarray(clip[start:start + block]), rate, VAD_RATE)
        for s, e in vad(piece):
            if spans and abs(spans[-1][1] - (offset + s)) < 0.05 and s < 0.05:
                spans[-1] = (spans[-1][0], offset + e)  # cut in two by the block edge
            else:
                spans.append((offset + s, offset + e))
    return spans
