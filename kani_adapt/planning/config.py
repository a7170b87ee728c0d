"""The plan's settings (``kani-adapt plan RECIPE plan.KEY=VALUE``, or ``--config PLAN.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from data_tools.config import RayConfig
from kani_adapt.config.shared import Seed

FOLDER = "plan"  # in the recipe's work_dir, unless `out` names another


@dataclass
class PlanConfig:
    out: str = ""  # where the plan writes (default: WORK_DIR/plan)
    seed: Seed = 0  # draws the subsets (the same seed gives the same nested subsets)
    # The hours axis: shares of the training set's hours, each subset nested in the next;
    # the last is the whole training set.
    fractions: list[float] = field(default_factory=lambda: [0.0625, 0.125, 0.25, 0.5, 1.0])
    # The voices axis: the hours of this fraction (one of `fractions`) spoken by fewer voices.
    speaker_fraction: float = 0.25
    # How many voices each voices-axis pilot hears ([]: half and a quarter of the training
    # voices, where they hold enough speech).
    speaker_counts: list[int] = field(default_factory=list)
    min_minutes: float = 5.0  # the least speech a subset may hold
    min_steps: int = 10  # the fewest steps a pilot trains
    resamples: int = 200  # bootstrap draws of the eval speakers
    # The figure to reach, per metric (default: cer and corpus_cer within 1.2x of the
    # recordings', catastrophic at half the base's); a metric named here overrides its default.
    targets: dict[str, float] = field(default_factory=dict)
    heldout_rows: int = 64  # held-out rows whose loss each pilot measures
    # Where pilots run: local (one after another; one per GPU when this machine has several)
    # or ray (a task per pilot on a Ray cluster, the `ray` section: a local one by default).
    engine: Literal["local", "ray"] = "local"
    gpus: int = 0  # local: GPUs to use at once (0: every GPU this machine has)
    ray: RayConfig = field(default_factory=RayConfig)
    RANGES: ClassVar[dict] = {"fractions": "(0, 1]", "speaker_fraction": "(0, 1]",
                              "speaker_counts": ">= 1", "min_minutes": ">= 0", "min_steps": ">= 1",
                              "resamples": ">= 20", "heldout_rows": ">= 1", "gpus": ">= 0"}

    def validate(self) -> list[str]:
        problems = []
        if sorted(set(self.fractions)) != list(self.fractions):
            problems.append("fractions: give them rising, each once (e.g. [0.125, 0.25, 0.5, 1])")
        if len(self.fractions) < 3:
            problems.append(f"fractions: {len(self.fractions)} given; a curve needs at least 3 "
                            "(5 leave one to check the fit with)")
        if self.fractions and self.fractions[-1] != 1.0:
            problems.append("fractions: the last one is the whole training set, 1.0")
        if self.speaker_fraction not in self.fractions:
            problems.append(f"speaker_fraction {self.speaker_fraction} is not one of fractions "
                            f"{self.fractions}: the voices axis is compared with that hours pilot")
        return problems
