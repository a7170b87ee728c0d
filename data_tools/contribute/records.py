"""Records of the contribution gate: clips found, problems found, the outcome of each check."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data_tools.speech.quality import Features
from kani_adapt.core.untrusted import visible_name

ERROR, WARNING = "error", "warning"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
# Check names in report order; each Problem's ``check`` is one of them.
CHECKS = ("card", "layout", "transcripts", "audio", "quality", "alignment", "duplicates",
          "splits", "speakers", "accents")
@dataclass
class Clip:
    """One audio file of the contribution, as found on disk."""

    id: str  # "<split>/<speaker>/<stem>": says where it lies under DIR/audio
    path: Path
    split: str
    speaker: str
    text: str | None  # None: no usable transcript (see text_error)
    text_error: str = ""  # missing_transcript, empty_transcript, transcript_not_utf8


@dataclass
class Measured:
    """A clip after reading it: its measurements, or why it could not be read."""

    clip: Clip
    audio_error: str = ""  # "<reason>: detail" when the file cannot be used
    duration: float = 0.0
    orig_sample_rate: int = 0
    sha256: str = ""
    features: Features | None = None

    @property
    def readable(self) -> bool:
        return not self.audio_error


@dataclass
class Problem:
    check: str  # card, layout, audio, transcripts, quality, duplicates, splits, speakers, ...
    reason: str  # machine-readable, e.g. license_missing
    detail: str  # one line naming the file or clip and the fix
    severity: str = ERROR  # errors reject the dataset; warnings are reported only

    def __post_init__(self):
        self.detail = visible_name(self.detail)  # names from the contribution, shown as they are

    def line(self) -> str:
        return f"{self.severity} [{self.reason}] {self.detail}"


@dataclass
class CheckResult:
    name: str
    status: str  # passed, failed, skipped (never shown as passed)
    note: str = ""


@dataclass
class Validation:
    folder: str
    checks: list[CheckResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    measured: list[Measured] = field(default_factory=list)  # every clip, for packaging
    # {"check", "why"} of every check that did not run (never shown as passed)
    not_checked: list[dict] = field(default_factory=list)
    # {key: {"value", "default"}} of every threshold given other than its default
    thresholds_changed: dict = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return not any(p.severity == ERROR for p in self.problems)

    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]
