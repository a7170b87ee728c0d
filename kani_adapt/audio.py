"""Audio I/O for the whole project: read any libsndfile format as mono float32, resample with soxr.

What libsndfile cannot read (m4a/aac from phones, opus/webm from browsers, wma...) is decoded
with PyAV, whose wheels ship their own FFmpeg; a file neither can decode is ``unsupported_format``
(with its suffix) when no decoder knows it, ``unreadable_audio`` when it is damaged.

The data tools, the codec trainer and checker, the scorers, the speaker embedder and evaluation
all read and resample here (writes go through :func:`kani_adapt.core.atomic.write_audio`;
:func:`write_clip` is the data tools' 16-bit clip). A file that cannot be used raises
:class:`AudioReadError`, a one-line :class:`DataError` whose ``reason`` the data tools record
as the rejection code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kani_adapt.core.errors import DataError

UNREADABLE, EMPTY, NOT_FINITE = "unreadable_audio", "empty_audio", "nan_samples"
UNSUPPORTED, HEADER_MISMATCH = "unsupported_format", "header_mismatch"
SNDFILE_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".w64",
                    ".caf", ".oga")
FFMPEG_SUFFIXES = (".m4a", ".aac", ".opus", ".webm", ".weba", ".wma", ".mp4", ".mka", ".amr",
                   ".3gp", ".ac3", ".alac", ".ape", ".wv", ".mpc", ".ra", ".spx", ".mov")
AUDIO_SUFFIXES = SNDFILE_SUFFIXES + FFMPEG_SUFFIXES
# libsndfile's own note when a chunk's declared size disagrees with the file ("(should be N)")
_DECLARED = re.compile(r"^\s*(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


class AudioReadError(DataError):
    """An unusable audio file; ``reason`` is one of UNREADABLE, EMPTY, NOT_FINITE."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass
class Audio:
    audio: np.ndarray  # mono float32 at ``sample_rate``
    sample_rate: int
    orig_sample_rate: int  # the file's rate, before resampling
    channels: int  # the file's channel count, before averaging


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """float32 ``audio`` at ``rate_out`` (soxr, high quality); a copy when nothing changes."""
    if rate_in == rate_out or np.asarray(audio).size == 0:
        return np.asarray(audio).astype(np.float32)
    import soxr

    return soxr.resample(audio, rate_in, rate_out).astype(np.float32)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """float32 samples; a (samples, channels) array is averaged over its channels."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1).astype(np.float32)
    if audio.ndim != 1:
        raise DataError(f"audio must be 1-d (samples) or 2-d (samples, channels), got {audio.shape}")
    return audio


@dataclass
class Probe:
    seconds: float
    sample_rate: int
    decoder: str  # "libsndfile" or "ffmpeg"


def probe(path: str | Path) -> Probe:
    """Length and rate of an audio file without decoding it; a header whose declared data
    length disagrees with the file (a lie, or a cut download) is ``header_mismatch``."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # libsndfile does not know it: FFmpeg's view of the container
        seconds, rate = _av_probe(Path(path))
        return Probe(seconds, rate, "ffmpeg")
    for chunk, declared, actual in _DECLARED.findall(info.extra_info or ""):
        declared, actual = int(declared), int(actual)
        if declared not in (0, 0xFFFFFFFF) and declared > actual * 1.01 + 64:
            raise AudioReadError(HEADER_MISMATCH, f"{path}: the header declares {declared} bytes "
                                 f"of audio, the file holds {actual}; re-export or re-download it")
    return Probe(info.frames / info.samplerate, info.samplerate, "libsndfile")


def read(path: str | Path, sample_rate: int | None = None, *, offset_seconds: float = 0.0,
         max_seconds: float | None = None, check_finite: bool = True) -> Audio:
    """``path`` (libsndfile formats, else FFmpeg's through PyAV) as mono float32, resampled to
    ``sample_rate`` (``None``: the file's own), optionally the window ``offset_seconds`` ..
    ``+max_seconds``."""
    import soundfile as sf

    try:
        start, frames = 0, -1
        if offset_seconds or max_seconds is not None:
            rate = sf.info(str(path)).samplerate
            start = int(offset_seconds * rate)
            frames = -1 if max_seconds is None else int(np.ceil(max_seconds * rate))
        data, rate = sf.read(str(path), start=start, frames=frames, dtype="float32",
                             always_2d=True)
    except Exception:  # libsndfile raises several types for files it cannot read
        data, rate = _av_read(Path(path), offset_seconds, max_seconds)
    if data.shape[0] == 0:
        raise AudioReadError(EMPTY, f"{path}: no audio samples")
    if check_finite and not np.isfinite(data).all():
        raise AudioReadError(NOT_FINITE, f"{path} contains NaN or infinite samples")
    target = sample_rate or rate
    audio = resample(to_mono(data), rate, target)
    if max_seconds is not None:
        audio = audio[: int(max_seconds * target)]
        if len(audio) == 0:
            raise AudioReadError(EMPTY, f"{path}: no audio samples")
    return Audio(audio, target, rate, data.shape[1])


def _av_open(path: Path):
    """The container and its first audio stream, or the reason it cannot be decoded."""
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        if isinstance(err, (av.error.InvalidDataError, av.error.EOFError)):
            raise AudioReadError(UNREADABLE, f"{path}: cannot read audio ({err.strerror or err}); "
                                 "is the file complete?") from None
        raise _unsupported(path) from None
    streams = [s for s in container.streams if s.type == "audio"]
    if not streams or streams[0].codec_context is None:
        container.close()
        raise _unsupported(path, "no audio stream")
    return container, streams[0]


def _unsupported(path: Path, why: str = "no decoder for it") -> AudioReadError:
    suffix = path.suffix.lower() or "(no suffix)"
    return AudioReadError(UNSUPPORTED, f"{path}: unsupported format {suffix} ({why}); convert it "
                                       "to wav or flac")


def _av_probe(path: Path) -> tuple[float, int]:
    container, stream = _av_open(path)
    with container:
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        else:
            seconds = (container.duration or 0) / 1_000_000
        return seconds, int(stream.codec_context.sample_rate or stream.rate)


def _av_read(path: Path, offset_seconds: float, max_seconds: float | None):
    """(samples [frames, channels] float32, rate) through FFmpeg, decoded frame by frame."""
    import av

    container, stream = _av_open(path)
    rate = int(stream.codec_context.sample_rate or stream.rate)
    start = int(offset_seconds * rate)
    stop = None if max_seconds is None else start + int(np.ceil(max_seconds * rate))
    resampler = av.AudioResampler(format="fltp")  # planar float32, layout and rate kept
    pieces, seen = [], 0
    try:
        with container:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    block = out.to_ndarray()
                    lo, hi = max(0, start - seen), block.shape[1]
                    if stop is not None:
                        hi = min(hi, stop - seen)
                    if hi > lo:
                        pieces.append(block[:, lo:hi])
                    seen += block.shape[1]
                if stop is not None and seen >= stop:
                    break
    except av.error.FFmpegError as err:
        raise AudioReadError(UNREADABLE, f"{path}: cannot decode audio ({err.strerror or err})"
                             ) from None
    if not pieces:
        return np.zeros((0, 1), np.float32), rate
    return np.concatenate(pieces, axis=1).T.astype(np.float32, copy=False), rate


def padded(audios):
    """A [B, T] float32 tensor of mono clips, zero padded at the end, and their lengths [B]."""
    import torch

    lengths = torch.tensor([len(a) for a in audios], dtype=torch.long)
    batch = torch.zeros(len(audios), int(lengths.max()) if len(audios) else 0)
    for row, audio in enumerate(audios):
        batch[row, :len(audio)] = torch.from_numpy(np.asarray(audio, dtype=np.float32))
    return batch, lengths


def read_clip(path: str | Path) -> tuple[np.ndarray, int]:
    """A clip the data tools wrote (mono, finite already) at its own rate."""
    got = read(path, check_finite=False)
    return got.audio, got.sample_rate


def write_clip(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """A 16-bit WAV clip of the data tools, written to a temporary name and renamed.

    Samples are clipped to [-1, 1] first: resampling can overshoot a clipped original, and
    16-bit conversion would wrap around instead of saturating.
    """
    from kani_adapt.core.atomic import write_audio

    write_audio(path, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")


def to_rate(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Mono float32 at ``target``; a (T, C) array is averaged over channels."""
    audio = to_mono(audio)
    return audio if rate == target else resample(audio, rate, target)


def all_to_rate(audios: Sequence[np.ndarray], rate: int, target: int) -> list[np.ndarray]:
    return [to_rate(a, rate, target) for a in audios]


TARGET_LUFS = -26.0  # leaves headroom: few clips need their gain capped to avoid clipping
PEAK = 0.98
MIN_LOUDNESS_SECONDS = 0.4  # one BS.1770 gating block; shorter clips are measured tiled


def loudness(audio: np.ndarray, rate: int) -> float:
    """Integrated loudness in LUFS; -inf for silence."""
    import pyloudnorm

    audio = np.asarray(audio, dtype=np.float64)
    if not audio.size or not np.any(audio):
        return float("-inf")
    need = int(np.ceil(MIN_LOUDNESS_SECONDS * rate)) + 1
    if audio.size < need:
        audio = np.tile(audio, int(np.ceil(need / audio.size)))
    return float(pyloudnorm.Meter(rate).integrated_loudness(audio))


def matched(audio: np.ndarray, rate: int, target: float = TARGET_LUFS) -> np.ndarray:
    """``audio`` at ``target`` LUFS, its gain lowered where the peak would pass ``PEAK``."""
    level = loudness(audio, rate)
    if not np.isfinite(level):
        return np.asarray(audio, dtype=np.float32)
    gain = 10 ** ((target - level) / 20)
    peak = float(np.abs(audio).max()) * gain
    if peak > PEAK:
        gain *= PEAK / peak
    return (np.asarray(audio, dtype=np.float64) * gain).astype(np.float32)


def trim_silence(audio: np.ndarray, rate: int, below_peak_db: float = 40.0,
                 pad_seconds: float = 0.1) -> np.ndarray:
    """``audio`` without its leading and trailing silence: 20 ms windows more than
    ``below_peak_db`` under the loudest one, keeping ``pad_seconds`` either side. Silence
    throughout comes back unchanged."""
    audio = np.asarray(audio, dtype=np.float32)
    hop = max(1, int(0.02 * rate))
    n = len(audio) // hop
    if n == 0:
        return audio
    rms = np.sqrt((audio[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(1))
    if not rms.max() > 0:
        return audio
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-below_peak_db / 20))
    pad = int(pad_seconds * rate)
    return audio[max(0, loud[0] * hop - pad): min(len(audio), (loud[-1] + 1) * hop + pad)]
