"""Thresholds of the contribution gate: a typed dataclass, YAML via ``--config``.

Quality thresholds default to the filter stage's, so a dataset that passes here is one the
training pipeline will mostly keep.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

from data_tools.config import normalise_raw
from data_tools.inputs.bounds import ClipBounds
from data_tools.stages.align import AlignConfig
from data_tools.stages.filter import FilterConfig
from kani_adapt.config.typed import from_dict
from kani_adapt.config.load import read_yaml
from kani_adapt.core.errors import ConfigError

SPLITS = ("train", "validation", "test")


@dataclass
class ContributeConfig:
    min_hours: float = 1.0  # per accent tag, over readable clips
    min_speakers: int = 3  # per accent tag: a tag must describe an accent, not copy one voice
    max_speaker_share: float = 0.5  # warn when one speaker holds more of a tag's hours
    max_bad_clip_fraction: float = 0.1  # share of clips failing quality rules before rejecting
    # Bounds on the work one file may cost, checked from its size and header before it is
    # decoded (a longer clip is rejected unread, and decoding stops at the bound whatever the
    # header said): clips are one utterance (1-20 s), so these only stop what is no clip.
    # Ingest reads a packaged contribution within the same defaults (data_tools/inputs/bounds.py).
    max_clip_seconds: float = ClipBounds.max_clip_seconds
    max_clip_mb: float = ClipBounds.max_clip_mb  # file size
    max_decoded_mb: float = ClipBounds.max_decoded_mb  # seconds x rate x channels x 4 bytes
    # The filter stage's own section (same keys, same defaults): its quality rules are reused.
    filter: FilterConfig = field(default_factory=FilterConfig)
    align: AlignConfig = field(default_factory=AlignConfig)  # used where MFA is installed
    RENAMED: ClassVar[dict] = {k: f"filter.{k}" for k in (
        "min_seconds", "max_seconds", "max_clipped_fraction", "min_snr_db", "max_silence_ratio",
        "min_orig_sample_rate", "near_duplicate_similarity")}
    RANGES: ClassVar[dict[str, str]] = {"min_hours": ">= 0", "min_speakers": ">= 1",
                                        "max_speaker_share": "[0, 1]",
                                        "max_bad_clip_fraction": "[0, 1]",
                                        "max_clip_seconds": "> 0", "max_clip_mb": "> 0",
                                        "max_decoded_mb": "> 0"}

    def bounds(self) -> ClipBounds:
        return ClipBounds(self.max_clip_seconds, self.max_clip_mb, self.max_decoded_mb)


def changed_from_defaults(cfg: ContributeConfig) -> dict[str, dict]:
    """{dotted key: {"value", "default"}} of every threshold that differs from its default
    (``--min-hours 0.002`` gives {"min_hours": {"value": 0.002, "default": 1.0}})."""
    def flat(obj, prefix=""):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                out |= flat(value, f"{prefix}{f.name}.")
            else:
                out[prefix + f.name] = value
        return out
    given, default = flat(cfg), flat(ContributeConfig())
    return {k: {"value": v, "default": default[k]} for k, v in given.items() if v != default[k]}


def load(path: str | Path | None, overrides: list[str] = ()) -> ContributeConfig:
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"no such contribute config: {path}")
    # as kani_adapt.config.load_config, with YAML's on/off read as the align switch
    where = str(path) if path is not None else "config"
    return from_dict(ContributeConfig, normalise_raw(read_yaml(path, list(overrides))), where)
