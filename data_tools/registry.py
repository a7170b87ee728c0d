"""The pipeline's stages in order, and the protocol every stage follows.

``ORDER`` is the only place the order is written: the CLI subcommands, ``prepare``, the report
and the help text read it from here. A stage is one module defining ``STAGE`` (an object with the
``Stage`` protocol) plus, where it has settings, one section of ``DataConfig`` named like it.
``data_tools/runner.py`` does the rest (resume, shards, locks, progress, rejection records).
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

# Module names under data_tools/stages/ (each named as its stage), in pipeline order.
ORDER = ("ingest", "segment", "transcribe", "align", "filter", "embed", "outliers",
         "tokenize", "write")


class Rejected(Exception):
    """An item a stage does not pass on; ``code`` is a short machine-readable reason."""

    def __init__(self, code: str, detail: str = "", seconds: float | None = None):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code, self.detail = code, detail
        self.seconds = seconds  # length of the rejected audio where the item does not say it


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage asks for where an engine places work on a cluster (Ray); the
    local runner does everything in its own process and reads none of it."""

    pool: bool = False  # True: long-lived workers that load the model once each (an actor pool);
    #                     False: independent tasks, each opening the stage for its block of work
    device: str = "cpu"  # the stage's device: cuda (or auto, on a cluster with GPUs) asks a GPU
    cpus: float = 1.0  # CPU cores one worker uses


@dataclass
class Kept:
    """What one input item became: zero or more output utterances, and stage data to log."""

    items: list = field(default_factory=list)  # Utterance objects
    extra: dict = field(default_factory=dict)  # kept in the stage's log (features, vectors)


class Stage(Protocol):
    name: str  # subcommand, folder inside the work folder, ``stage`` of its rejections
    section: str  # its DataConfig section ("" when it has none)
    help: str  # one line for --help and the docs
    inputs: tuple[str, ...] | None  # stages it reads, nearest first; None: the previous chain stage
    chain: bool  # its manifest feeds the next stages (False: a branch such as embed)
    model: bool  # runs a model: takes --shard I/N and a device, processes batches
    resumable: bool  # False: rebuilt whole on every run (write)
    writes_text: bool  # writes transcripts (ASR): ingest then keeps clips that have none
    columns: tuple[str, ...]  # float dataset columns it logs per clip as
    #                           ``Kept.extra["columns"] = {output id: {column: value}}``

    def enabled(self, cfg) -> bool:
        """Whether ``prepare`` runs it with this config (align: only where MFA is installed)."""

    def why_off(self, cfg) -> str:
        """Said when ``prepare`` skips it."""

    def resources(self, cfg) -> Resources:
        """What one of its workers needs on a cluster: model stages load once per worker."""

    def settings(self, ctx) -> dict:
        """What its results depend on; a change restarts the stage from scratch."""

    def items(self, ctx) -> list:
        """Its input items (objects with an ``id``); by default the input stage's manifest."""

    def open(self, ctx) -> None:
        """Load models (called only when there is work to do)."""

    def batches(self, ctx, todo: list) -> list[list]:
        """Units of work; one log line each. Item stages: one item per batch. Called after
        ``open`` in the process that opened the stage (on Ray: one of its workers)."""

    def process(self, ctx, batch: list) -> dict[str, Kept | Rejected]:
        """The outcome of every item of ``batch``, by id."""

    def decide(self, ctx, items: list, results: dict) -> tuple[list, list[dict]]:
        """(kept utterances, rejection records) once every item has a result."""


@dataclass
class Context:
    """One run of one stage: the whole config, the work folder, the shard, injected models."""

    cfg: Any  # DataConfig
    work: Any  # Path
    shard: tuple[int, int] = (0, 1)
    given: dict = field(default_factory=dict)  # models passed in: vad, embedder, tokenizer, asr
    state: dict = field(default_factory=dict)  # what ``open`` loaded, and stage results

    def section(self, stage: Stage):
        return getattr(self.cfg, stage.section) if stage.section else None


def stages() -> list[Stage]:
    return [importlib.import_module(f"data_tools.stages.{module}").STAGE for module in ORDER]


def get(name: str) -> Stage:
    for stage in stages():
        if stage.name == name:
            return stage
    raise KeyError(name)


def names() -> list[str]:
    return [s.name for s in stages()]


def inputs_of(stage: Stage) -> tuple[str, ...]:
    """Stages whose manifest ``stage`` reads, nearest first."""
    if stage.inputs is not None:
        return stage.inputs
    order = stages()
    earlier = order[: [s.name for s in order].index(stage.name)]
    return tuple(s.name for s in reversed(earlier) if s.chain)


def device_resolved(cfg, stage: Stage, resolve=None):
    """A copy of ``cfg`` whose stage section names the torch device it runs on: ``auto`` becomes
    this process's GPU (its local rank's under torchrun/srun) or the CPU. ``resolve``: how a
    device is resolved where the default does not fit (a Ray worker and the GPU it was given)."""
    section = getattr(cfg, stage.section, None) if stage.section else None
    if not stage.model or not hasattr(section, "device"):
        return cfg
    if resolve is None:
        from kani_adapt.core.devices import resolve

    section = dataclasses.replace(section, device=resolve(section.device))
    return dataclasses.replace(cfg, **{stage.section: section})
