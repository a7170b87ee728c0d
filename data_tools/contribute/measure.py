"""Reading one clip of a contribution within bounds (data_tools/inputs/bounds.py): its size,
length, rate and channels are known before it is decoded, and decoding stops at the bound
whatever its header said.

A file past a bound becomes a rejection of that file with its reason (``file_too_large``,
``clip_too_long``, ``decode_too_large``); the gate goes on with the others, so one 3-hour
recording costs a header read, not the reviewer's memory.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from data_tools.contribute.config import ContributeConfig
from data_tools.contribute.records import Clip, Measured
from data_tools.inputs.bounds import decoded_too_long, over_bounds

# Reasons whose detail says the fix itself (the others are decoding failures: re-export)
BOUNDS = ("clip_too_long", "file_too_large", "decode_too_large", "decode_out_of_memory")
HASH_BLOCK = 1 << 20


def measure_clip(clip: Clip, cfg: ContributeConfig) -> Measured:
    """The clip's measurements, or why it cannot be used (one reason, never an exception)."""
    from data_tools.speech.quality import measure
    from kani_adapt.audio import AudioReadError, read

    bounds = cfg.bounds()
    try:
        refused = over_bounds(clip.path, bounds)
        if refused:
            return Measured(clip, audio_error=refused)
        loaded = read(clip.path, max_seconds=bounds.window)  # never further than this
    except AudioReadError as err:
        return Measured(clip, audio_error=f"{err.reason}: {err.detail.split(': ', 1)[-1]}")
    except MemoryError:
        return Measured(clip, audio_error="decode_out_of_memory: this machine could not hold "
                        "the decoded clip; lower max_decoded_mb or re-export it shorter")
    except OSError as err:
        return Measured(clip, audio_error=f"unreadable_audio: {err.strerror or err}")
    seconds = len(loaded.audio) / loaded.sample_rate
    if decoded_too_long(seconds, bounds):
        return Measured(clip, audio_error=decoded_too_long(seconds, bounds))
    return Measured(clip, duration=seconds, orig_sample_rate=loaded.orig_sample_rate,
                    sha256=file_sha256(clip.path),
                    features=measure(loaded.audio, loaded.sample_rate, clip.text or ""))


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
