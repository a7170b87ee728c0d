"""NeMo manifests (JSON lines) and audio loading at the codec's sample rate."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kani_adapt import audio as audio_io
from kani_adapt.core.errors import DataError


@dataclass(frozen=True)
class Clip:
    """One manifest line; relative audio paths are resolved against the manifest's folder."""

    audio_filepath: Path
    duration: float
    speaker: str = "unknown"
    tag: str = "none"
    text: str = ""


def _parse_line(line: str, where: str, base: Path) -> Clip:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: not JSON ({err.msg})") from err
    if not isinstance(row, dict) or "audio_filepath" not in row or "duration" not in row:
        raise DataError(f"{where}: needs 'audio_filepath' and 'duration'")
    try:
        duration = float(row["duration"])
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: duration {row['duration']!r} is not a number") from err
    if not duration > 0:
        raise DataError(f"{where}: duration must be positive, got {duration}")
    path = Path(row["audio_filepath"])
    return Clip(
        audio_filepath=path if path.is_absolute() else base / path,
        duration=duration,
        speaker=str(row.get("speaker") or "unknown"),
        tag=str(row.get("tag") or "none"),
        text=str(row.get("text") or ""),
    )


def read_nemo_manifest(path: Path) -> list[Clip]:
    """All clips of a NeMo audio manifest (one JSON object per line with ``audio_filepath``,
    ``duration``...); every bad line is reported at once. Not the data tools' utterance
    manifest (:func:`data_tools.records.read_utterances`)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise DataError(f"{path}: cannot read the manifest ({err.strerror})") from err
    clips, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            clips.append(_parse_line(line, f"{path}:{number}", path.parent))
        except DataError as err:
            problems.append(str(err))
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError("; ".join(problems[:3]) + more)
    if not clips:
        raise DataError(f"{path}: the manifest has no clips")
    return clips


read_manifest = read_nemo_manifest  # the name the codec trainer and checker use


def manifest_line(audio: Path, duration: float, text: str = "", speaker: str = "", tag: str = "") -> str:
    """One line of a NeMo manifest (what :func:`read_nemo_manifest` reads), newline included."""
    return json.dumps({"audio_filepath": str(audio), "duration": duration, "text": text,
                       "speaker": speaker, "tag": tag}, ensure_ascii=False) + "\n"


def load_audio(path: Path, sample_rate: int, max_seconds: float | None = None,
               offset_seconds: float = 0.0) -> np.ndarray:
    """Mono float32 at ``sample_rate`` (resampled with soxr), optionally a window of the file."""
    return audio_io.read(path, sample_rate, offset_seconds=offset_seconds, max_seconds=max_seconds,
                         check_finite=False).audio
