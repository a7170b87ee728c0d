"""A second training objective for the objective-axis tests: the supervised loss on audio tokens
only, each batch weighted by a constant, with a figure of its own and a probe batch of its own.
It is one module and one registry entry (the tests add ``"weighted":
"tests.training.weighted_objective"`` to the registry), nothing else."""
from __future__ import annotations

import torch

from kani_adapt import tokens
from kani_adapt.training.losses import mean_loss
from kani_adapt.training.objectives import sft

SCALE = 3.0
CALLS: list[str] = []  # what the run asked of this objective, in order


class Meter:
    def __init__(self):
        self.sums: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor) -> None:
        self.sums.append(loss.detach())

    def reset(self) -> None:
        self.sums = []

    def flush(self) -> dict[str, float]:
        if not self.sums:
            return {}
        out = {"loss": float(torch.stack(self.sums).mean()), "weighted_marker": SCALE}
        self.sums = []
        return out


class Weighted:
    name = "weighted"
    help = "audio-only next-token loss times a constant (a test objective)"

    def data(self, cfg, tokenizer, token_budget=None):
        CALLS.append("data")
        return sft.OBJECTIVE.data(cfg, tokenizer, token_budget)

    def meter(self) -> Meter:
        return Meter()

    def _loss(self, module, batch) -> torch.Tensor:
        per_token, labels = sft.token_losses(module, batch)
        audio = labels.clone()
        audio[audio < tokens.AUDIO_TOKENS_START] = tokens.IGNORE_INDEX
        return SCALE * mean_loss(per_token, audio)

    def training_loss(self, module, batch) -> torch.Tensor:
        CALLS.append("training_loss")
        loss = self._loss(module, batch)
        module.meter.add(loss)
        return loss

    def losses(self, module, batch) -> dict[str, torch.Tensor]:
        CALLS.append("losses")
        return {"loss": self._loss(module, batch)}

    def weight(self, batch) -> int:
        return int(batch["input_ids"].shape[0])

    def probe_batch(self, module, budget: int, longest: int) -> dict[str, torch.Tensor]:
        CALLS.append("probe_batch")
        return sft.OBJECTIVE.probe_batch(module, budget, longest)


OBJECTIVE = Weighted()
