"""Settings several schemas share, declared once so they keep one name and one meaning.

- ``device`` (:data:`kani_adapt.core.devices.Device`): data stages, evaluation, codec and generator
  training, and the ``--device`` of every command.
- ``seed`` (:data:`Seed`): codec and generator training, evaluation, recipe samples.
- LoRA (:class:`LoraCommon`) and optimiser (:class:`OptimCommon`) keys of the codec and the
  generator: each adds only what is its own (the generator's target modules, the codec's
  transposed convolutions).
- The codec reference (``codec:``, default :data:`kani_adapt.config.defaults.NANOCODEC_HUB_ID`) and the
  clip-length limit (:data:`kani_adapt.config.defaults.MAX_CLIP_SECONDS`) are single constants.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Optional

from kani_adapt.core.devices import Device  # noqa: F401  (re-exported: every schema's device type)


def _not_negative(value: int) -> str | None:
    return None if value >= 0 else f"{value} is below 0; a seed is 0 or more"


# The type of every ``seed`` field: the same seed gives the same run, sample or evaluation.
Seed = Annotated[int, _not_negative]


@dataclass
class LoraCommon:
    r: int = 16  # rank of each low-rank update
    alpha: float = 32.0  # update scale = alpha / r
    RANGES: ClassVar[dict] = {"r": ">= 1", "alpha": "> 0"}
    RENAMED: ClassVar[dict] = {"rank": "r"}


@dataclass
class OptimCommon:
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])  # AdamW / Adam
    grad_clip: Optional[float] = 1.0  # global gradient-norm clip; 0 or null: no clipping
    RANGES: ClassVar[dict] = {"lr": "> 0", "betas": "[0, 1)", "grad_clip": ">= 0"}
    RENAMED: ClassVar[dict] = {"clip_grad_norm": "grad_clip", "gradient_clip_val": "grad_clip"}
