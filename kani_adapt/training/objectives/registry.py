"""The training objectives by name: ``TrainConfig.objective`` picks one; a new objective is one
module in this folder (defining ``OBJECTIVE``, an object with the :class:`Objective` protocol)
plus one entry below. Only names live here, so the schema can check a name without loading
training code; the module is imported when a run needs it.
"""
from __future__ import annotations

import importlib
from typing import Any, Protocol

# name -> its module: a name under kani_adapt/training/objectives/, or a dotted module path
OBJECTIVES = {"sft": "sft", "dpo": "dpo"}


class Objective(Protocol):
    name: str
    help: str  # one line for the docs and the schema's error messages

    def data(self, cfg, tokenizer, token_budget) -> Any:
        """The run's Lightning data module (built before the trainer). It offers what a run
        reads: ``setup``, ``train_set.lengths`` (for the budget probe), ``val_set`` and
        ``replay_val`` (validation samples and scored speech; ``None`` where it has none),
        ``frontend``, ``text_layout`` and ``stats`` (written to the run folder)."""

    def meter(self) -> Any:
        """Training figures summed on the device between log intervals (``add`` in
        :meth:`training_loss`, ``flush`` -> {name: value} logged as ``train/<name>``)."""

    def training_loss(self, module, batch):
        """The step's loss (a scalar tensor); its figures go to ``module.meter``."""

    def losses(self, module, batch) -> dict:
        """Validation figures of a batch: {name: scalar tensor}, ``loss`` among them."""

    def weight(self, batch) -> int:
        """How much a validation batch counts in the epoch's mean (its scored targets)."""

    def probe_batch(self, module, budget: int, longest: int) -> dict:
        """A batch of the largest shape ``budget`` padded tokens allow, for measuring a step's
        memory (``data.token_budget: auto``)."""


def names() -> list[str]:
    return list(OBJECTIVES)


def get(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise KeyError(f"objective {name!r}: choose from {', '.join(OBJECTIVES)}")
    module = OBJECTIVES[name]
    if "." not in module:
        module = f"kani_adapt.training.objectives.{module}"
    return importlib.import_module(module).OBJECTIVE
