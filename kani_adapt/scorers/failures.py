"""Failure detectors of generated speech: pure functions over plain data.

- ``length_cap``: generation stopped at the frame cap, not at end of speech;
- ``runaway`` / ``truncated``: duration far above / below what the speaker's speaking rate
  predicts for the text;
- ``repeated_codes``: the code frames loop (a high share of repeated frame n-grams);
- ``mostly_silence``: most 20 ms windows are below a level floor;
- ``empty_transcript``: the recogniser heard nothing (only checked when a transcript exists).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

DEFAULT_CHARS_PER_SECOND = 14.0  # typical read speech when no reference gives the speaker's rate


@dataclass(frozen=True)
class FailureConfig:
    max_duration_ratio: float = 2.0  # duration / expected above this = runaway
    min_duration_ratio: float = 0.5  # below this = truncated
    ngram: int = 3  # frames per n-gram for the repetition check
    max_repeat_share: float = 0.5  # share of repeated frame n-grams above this = looping codes
    silence_db: float = -45.0  # 20 ms windows quieter than this (dBFS RMS) are silence
    max_silence_share: float = 0.8  # more silent windows than this = mostly silence
    RANGES: ClassVar[dict] = {"max_duration_ratio": "> 0", "min_duration_ratio": ">= 0", "ngram": ">= 1",
                              "max_repeat_share": "[0, 1]", "max_silence_share": "[0, 1]"}

    def validate(self) -> list[str]:
        if self.min_duration_ratio >= self.max_duration_ratio:
            return [f"min_duration_ratio ({self.min_duration_ratio}) must be below "
                    f"max_duration_ratio ({self.max_duration_ratio})"]
        return []


@dataclass
class Failures:
    length_cap: bool = False
    runaway: bool = False
    truncated: bool = False
    repeated_codes: bool = False
    mostly_silence: bool = False
    empty_transcript: bool = False
    duration_ratio: float = float("nan")
    repeat_share: float = float("nan")
    silence_share: float = float("nan")
    reasons: list[str] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(self.reasons)


def expected_seconds(text: str, chars_per_second: float) -> float:
    return len("".join(text.split())) / max(chars_per_second, 1e-6)


def speaking_rate(texts: list[str], seconds: list[float]) -> float:
    """Characters (without spaces) per second over a speaker's reference clips."""
    total = sum(seconds)
    chars = sum(len("".join(t.split())) for t in texts)
    return chars / total if total > 0 and chars > 0 else DEFAULT_CHARS_PER_SECOND


def repeat_share(codes: np.ndarray, n: int) -> float:
    """1 - distinct / total over the n-grams of whole frames; 0 for fresh codes, near 1 in loops."""
    codes = np.asarray(codes)
    if len(codes) < n + 1:  # no frames at all (a generator that stopped at once) included
        return 0.0
    codes = codes.reshape(len(codes), -1)
    grams = [codes[i:i + n].tobytes() for i in range(len(codes) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams)


def silence_share(audio: np.ndarray, rate: int, floor_db: float) -> float:
    win = max(1, int(0.02 * rate))
    n = len(audio) // win
    if n == 0:
        return 1.0
    frames = np.asarray(audio[:n * win], dtype=np.float64).reshape(n, win)
    rms_db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    return float(np.mean(rms_db < floor_db))


def detect(cfg: FailureConfig, *, text: str, audio: np.ndarray, rate: int,
           codes: np.ndarray | None = None, hit_length_cap: bool = False,
           chars_per_second: float = DEFAULT_CHARS_PER_SECOND,
           transcript: str | None = None) -> Failures:
    out = Failures(length_cap=bool(hit_length_cap))
    expected = expected_seconds(text, chars_per_second)
    seconds = len(audio) / rate
    out.duration_ratio = seconds / expected if expected > 0 else float("nan")
    out.runaway = bool(expected > 0 and out.duration_ratio > cfg.max_duration_ratio)
    out.truncated = bool(expected > 0 and out.duration_ratio < cfg.min_duration_ratio)
    if codes is not None:
        out.repeat_share = repeat_share(codes, cfg.ngram)
        out.repeated_codes = out.repeat_share > cfg.max_repeat_share
    out.silence_share = silence_share(audio, rate, cfg.silence_db)
    out.mostly_silence = out.silence_share > cfg.max_silence_share
    out.empty_transcript = transcript is not None and not transcript.strip()
    out.reasons = [name for name in ("length_cap", "runaway", "truncated", "repeated_codes",
                                     "mostly_silence", "empty_transcript") if getattr(out, name)]
    return out
