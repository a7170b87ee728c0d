"""The pipeline's stages in order: the one list every other piece reads.

``ORDER`` is the only place the stages are written. A stage is one module under
``data_tools/stages/`` defining ``STAGE`` (the protocol of data_tools/stages/kit.py) and, where it
has settings, its config dataclass; adding a stage is that module plus its name here. From this
list come the data config's sections (data_tools/config.py), the CLI subcommands, ``prepare``,
the preflight's models and devices (data_tools/preflight.py), the recipe's device wiring
(kani_adapt/recipes/schema.py) and the report; data_tools/runner.py does the rest (resume,
shards, locks, progress, rejection records).
"""
from __future__ import annotations

import importlib

from data_tools.stages.kit import Model, Pipeline, Stage

PACKAGE = "data_tools.stages"
# Module names under data_tools/stages/ (each named as its stage), in pipeline order.
ORDER = ("ingest", "segment", "transcribe", "align", "filter", "embed", "outliers",
         "tokenize", "write")


def stages() -> list[Stage]:
    return [importlib.import_module(f"{PACKAGE}.{module}").STAGE for module in ORDER]


def pipeline() -> Pipeline:
    """The stages in order, as a run hands them to its stages (``Context.pipeline``)."""
    return Pipeline(tuple(stages()))


def get(name: str) -> Stage:
    return pipeline().get(name)


def names() -> list[str]:
    return [s.name for s in stages()]


def inputs_of(stage: Stage) -> tuple[str, ...]:
    """Stages whose manifest ``stage`` reads, nearest first."""
    return pipeline().inputs_of(stage)


def sections() -> list[tuple[str, type]]:
    """(section name, its dataclass) of every stage that has settings, in pipeline order."""
    return [(s.section, s.config) for s in stages() if s.config is not None]


def models() -> list[tuple[Stage, Model]]:
    """Every model a stage declares, with its stage, in pipeline order."""
    return [(s, m) for s in stages() for m in s.models]


def device_keys(shared: bool = False) -> list[str]:
    """Dotted keys of the data config naming a stage's device; ``shared``: only those the
    recipe's top-level ``device`` reaches (the VAD keeps its own)."""
    return [f"{s.section}.{s.device}" for s in stages()
            if s.device and (s.shares_device or not shared)]
