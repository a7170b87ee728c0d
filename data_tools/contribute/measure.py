"""Reading one clip of a contribution within bounds: its size, length, rate and channels are
known before it is decoded, and decoding stops at the bound whatever its header said.

A file past a bound becomes a rejection of that file with its reason (``file_too_large``,
``clip_too_long``, ``decode_too_large``); the gate goes on with the others, so one 3-hour
recording (or a header that claims 64 channels at 384 kHz) costs a header read, not the
reviewer's memory.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from data_tools.contribute.config import ContributeConfig
from data_tools.contribute.records import Clip, Measured

MB = 2 ** 20
# Reasons whose detail says the fix itself (the others are decoding failures: re-export)
BOUNDS = ("clip_too_long", "file_too_large", "decode_too_large", "decode_out_of_memory")
SAMPLE_BYTES = 4  # a decoded sample: float32
CHANNEL_PROBE_SECONDS = 0.01  # decoded to learn the channel count (FFmpeg's headers vary)
HASH_BLOCK = 1 << 20


def measure_clip(clip: Clip, cfg: ContributeConfig) -> Measured:
    """The clip's measurements, or why it cannot be used (one reason, never an exception)."""
    from data_tools.speech.quality import measure
    from kani_adapt.audio import AudioReadError, read

    window = cfg.max_clip_seconds + 1.0  # decoding never goes further than this
    try:
        refused = over_bounds(clip.path, cfg)
        if refused:
            return Measured(clip, audio_error=refused)
        loaded = read(clip.path, max_seconds=window)
    except AudioReadError as err:
        return Measured(clip, audio_error=f"{err.reason}: {err.detail.split(': ', 1)[-1]}")
    except MemoryError:
        return Measured(clip, audio_error="decode_out_of_memory: this machine could not hold "
                        "the decoded clip; lower max_decoded_mb or re-export it shorter")
    except OSError as err:
        return Measured(clip, audio_error=f"unreadable_audio: {err.strerror or err}")
    seconds = len(loaded.audio) / loaded.sample_rate
    if seconds > cfg.max_clip_seconds:
        return Measured(clip, audio_error=f"clip_too_long: decoding passed max_clip_seconds="
                        f"{cfg.max_clip_seconds:g} though the header said less; cut it into "
                        "clips of one utterance")
    return Measured(clip, duration=seconds, orig_sample_rate=loaded.orig_sample_rate,
                    sha256=file_sha256(clip.path),
                    features=measure(loaded.audio, loaded.sample_rate, clip.text or ""))


def over_bounds(path: Path, cfg: ContributeConfig) -> str:
    """"<reason>: detail" when the file's size or header puts it past a bound, else ""."""
    from kani_adapt.audio import probe, read

    size = path.stat().st_size
    if size == 0:
        return "empty_audio: a zero-length file"
    head = probe(path)  # length and rate from the header, nothing decoded
    if head.seconds > cfg.max_clip_seconds:
        return (f"clip_too_long: {head.seconds:.0f} s > max_clip_seconds="
                f"{cfg.max_clip_seconds:g}; a clip is one utterance: cut the recording into "
                "clips")
    if size > cfg.max_clip_mb * MB:
        return (f"file_too_large: {size / MB:.1f} MB > max_clip_mb={cfg.max_clip_mb:g}; "
                "re-export it as 16-bit WAV or FLAC")
    channels = read(path, max_seconds=CHANNEL_PROBE_SECONDS, check_finite=False).channels
    seconds = head.seconds or cfg.max_clip_seconds  # a container without its length: the most
    decoded = seconds * head.sample_rate * channels * SAMPLE_BYTES
    if decoded > cfg.max_decoded_mb * MB:
        return (f"decode_too_large: {channels} channels at {head.sample_rate} Hz for "
                f"{seconds:.0f} s decode to {decoded / MB:.1f} MB > max_decoded_mb="
                f"{cfg.max_decoded_mb:g}; export it as mono or stereo")
    return ""


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
