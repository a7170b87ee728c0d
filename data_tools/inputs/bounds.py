"""What one audio file may cost to read, known before it is decoded.

A file past a bound is refused from its size and header (``file_too_large``, ``clip_too_long``,
``decode_too_large``), and decoding stops at the length bound whatever the header said, so one
3-hour recording (or a header that claims 64 channels at 384 kHz) costs a header read, not the
reader's memory. The contribution gate (data_tools/contribute/measure.py) and ingest's reading
of a packaged contribution (data_tools/inputs/package.py) apply the same bounds.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MB = 2 ** 20
SAMPLE_BYTES = 4  # a decoded sample: float32
CHANNEL_PROBE_SECONDS = 0.01  # decoded to learn the channel count (FFmpeg's headers vary)


@dataclass(frozen=True)
class ClipBounds:
    # clips are one utterance (1-20 s): these only stop what is no clip
    max_clip_seconds: float = 300.0  # longer files are refused from their header, never decoded
    max_clip_mb: float = 256.0  # file size
    max_decoded_mb: float = 256.0  # samples as decoded: seconds x rate x channels x 4 bytes

    @property
    def window(self) -> float:
        """Seconds decoding may go: past the bound, so a lying header is caught."""
        return self.max_clip_seconds + 1.0


def over_bounds(path: Path, bounds: ClipBounds) -> str:
    """"<reason>: detail" when the file's size or header puts it past a bound, else ""."""
    from kani_adapt.audio import probe, read

    size = Path(path).stat().st_size
    if size == 0:
        return "empty_audio: a zero-length file"
    head = probe(path)  # length and rate from the header, nothing decoded
    if head.seconds > bounds.max_clip_seconds:
        return (f"clip_too_long: {head.seconds:.0f} s > max_clip_seconds="
                f"{bounds.max_clip_seconds:g}; a clip is one utterance: cut the recording into "
                "clips")
    if size > bounds.max_clip_mb * MB:
        return (f"file_too_large: {size / MB:.1f} MB > max_clip_mb={bounds.max_clip_mb:g}; "
                "re-export it as 16-bit WAV or FLAC")
    channels = read(path, max_seconds=CHANNEL_PROBE_SECONDS, check_finite=False).channels
    seconds = head.seconds or bounds.max_clip_seconds  # a container without its length: the most
    decoded = seconds * head.sample_rate * channels * SAMPLE_BYTES
    if decoded > bounds.max_decoded_mb * MB:
        return (f"decode_too_large: {channels} channels at {head.sample_rate} Hz for "
                f"{seconds:.0f} s decode to {decoded / MB:.1f} MB > max_decoded_mb="
                f"{bounds.max_decoded_mb:g}; export it as mono or stereo")
    return ""


def decoded_too_long(seconds: float, bounds: ClipBounds) -> str:
    """The reason for a clip whose decoding passed the length bound its header kept under."""
    if seconds <= bounds.max_clip_seconds:
        return ""
    return (f"clip_too_long: decoding passed max_clip_seconds={bounds.max_clip_seconds:g} though "
            "the header said less; cut it into clips of one utterance")
