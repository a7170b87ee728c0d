"""The stage kit: the protocol every data stage follows, what a stage declares about itself, the
run it belongs to, and :class:`BaseStage` with the defaults.

A stage is one module under ``data_tools/stages/`` defining ``STAGE`` and, where it has settings,
its config dataclass (``STAGE.config``, the section ``STAGE.section`` of the data config, with its
defaults, comments, ``RANGES`` and ``RENAMED``). It declares the models it loads
(``STAGE.models``: preflight finds them on this machine, fetches them or refuses the run) and the
key of its section naming its device (``STAGE.device``; the recipe's ``device`` reaches it unless
``shares_device`` is False). The registry (data_tools/registry.py) lists the stages in order;
the data config, the preflight, the recipe's wiring, the CLI and the report read it from there.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

from data_tools.records import (Utterance, manifest_path, read_manifest, rejection, stage_dir)
from kani_adapt.core.errors import DataError

Switch = Literal["auto", "on", "off"]  # a stage that needs a tool: auto runs it where it is found


def ordered(cfg, low: str, high: str) -> list[str]:
    """The problem when setting ``low`` is not below setting ``high`` (both of ``cfg``)."""
    a, b = getattr(cfg, low), getattr(cfg, high)
    return [] if a < b else [f"{low} ({a}) must be below {high} ({b})"]


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


@dataclass(frozen=True)
class Model:
    """A model a stage loads, named by a key of the data config: the preflight finds it on this
    machine, says it will be fetched from the hub, or refuses the run in one line; the models
    the run will load are fetched before the first stage."""

    key: str  # dotted key of the data config naming it (it may lie in another stage's section)
    what: str  # what it is, in the preflight's line ("speaker embedder")
    given: str = ""  # where a caller hands one in instead (``Context.given``): then unchecked
    files: tuple[str, ...] = ("config.json",)  # what a local folder of it holds
    codec: bool = False  # a codec (.nemo, hub id or size; kani_adapt.codec.registry) not a folder
    when: Callable[[Any], bool] | None = None  # the data config asks for it (default: always)
    sizes: tuple[str, ...] = ()  # names its loader builds on this machine instead (``tiny``)

    def ref(self, cfg) -> str:
        """What the config names at ``key``."""
        value = cfg
        for part in self.key.split("."):
            value = getattr(value, part)
        return value


class Stage(Protocol):
    name: str  # subcommand, folder inside the work folder, ``stage`` of its rejections
    section: str  # its section of the data config ("" when it has none)
    config: type | None  # the dataclass of that section, defined in the stage's module
    help: str  # one line for --help and the docs
    inputs: tuple[str, ...] | None  # stages it reads, nearest first; None: the previous chain stage
    chain: bool  # its manifest feeds the next stages (False: a branch such as embed)
    model: bool  # runs a model: takes --shard I/N and a device, processes batches
    models: tuple[Model, ...]  # the models it loads, for the preflight
    device: str  # the key of its section naming its device ("" when it has none)
    shares_device: bool  # the recipe's ``device`` reaches it (False: it keeps its own)
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


@dataclass(frozen=True)
class Pipeline:
    """The stages of a run in order (the registry's): what a stage may ask of the others."""

    stages: tuple = ()

    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def get(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def inputs_of(self, stage: Stage) -> tuple[str, ...]:
        """Stages whose manifest ``stage`` reads, nearest first."""
        if stage.inputs is not None:
            return stage.inputs
        earlier = self.stages[: self.names().index(stage.name)]
        return tuple(s.name for s in reversed(earlier) if s.chain)


@dataclass
class Context:
    """One run of one stage: the whole config, the work folder, the shard, injected models, and
    the pipeline it belongs to."""

    cfg: Any  # DataConfig
    work: Any  # Path
    shard: tuple[int, int] = (0, 1)
    given: dict = field(default_factory=dict)  # models passed in: vad, embedder, tokenizer, asr
    state: dict = field(default_factory=dict)  # what ``open`` loaded, and stage results
    pipeline: Pipeline = field(default_factory=Pipeline)

    def section(self, stage: Stage):
        return getattr(self.cfg, stage.section) if stage.section else None


def device_of(cfg, stage: Stage) -> str | None:
    """The device ``stage`` runs on by ``cfg`` (None: it declares none)."""
    section = getattr(cfg, stage.section, None) if stage.section else None
    return getattr(section, stage.device) if stage.device and section is not None else None


def device_resolved(cfg, stage: Stage, resolve=None):
    """A copy of ``cfg`` whose stage section names the torch device it runs on: ``auto`` becomes
    this process's GPU (its local rank's under torchrun/srun) or the CPU. ``resolve``: how a
    device is resolved where the default does not fit (a Ray worker and the GPU it was given)."""
    device = device_of(cfg, stage)
    if not stage.model or device is None:
        return cfg
    if resolve is None:
        from kani_adapt.core.devices import resolve

    section = dataclasses.replace(getattr(cfg, stage.section), **{stage.device: resolve(device)})
    return dataclasses.replace(cfg, **{stage.section: section})


class BaseStage:
    """Defaults of the Stage protocol: an item stage reading the previous chain stage."""

    name, section, help, unit = "", "", "", "clip"
    config: type | None = None
    inputs: tuple[str, ...] | None = None
    chain, model, resumable, writes_text = True, False, True, False
    models: tuple[Model, ...] = ()
    device, shares_device = "", True
    columns: tuple[str, ...] = ()

    def enabled(self, cfg) -> bool:
        return True

    def why_off(self, cfg) -> str:
        return "turned off in the config"

    def resources(self, cfg) -> Resources:
        """A task per block on the stage's device; stages that load a model say ``pool``."""
        return Resources(device=device_of(cfg, self) or "cpu")

    def settings(self, ctx: Context) -> dict:
        section = ctx.section(self)
        if section is None:
            return {}
        # where it runs does not change its results
        return {k: v for k, v in dataclasses.asdict(section).items() if k != self.device}

    def items(self, ctx: Context) -> list:
        return read_manifest(input_manifest(ctx, self))

    def open(self, ctx: Context) -> None:
        pass

    def batches(self, ctx: Context, todo: list) -> list[list]:
        return [[item] for item in todo]

    def process(self, ctx: Context, batch: list) -> dict:
        out = {}
        for item in batch:
            try:
                out[item.id] = self.process_item(ctx, item)
            except Rejected as rejected:
                out[item.id] = rejected
        return out

    def process_item(self, ctx: Context, item) -> Kept:
        raise NotImplementedError

    def decide(self, ctx: Context, items: list, results: dict) -> tuple[list, list[dict]]:
        return collect(items, results, self.name)


def collect(items: list, results: dict, stage: str = "") -> tuple[list[Utterance], list[dict]]:
    """Kept utterances and rejection records in input order. An item whose output id another
    item already produced is rejected (``duplicate_id``), never silently merged. Parts of an
    item that a stage rejected while keeping the rest (``Kept.extra["dropped"]``: rejection
    records, e.g. pieces of a long recording) are rejections too, marked ``part`` (they do not
    count against max_rejected_fraction, which is about whole items)."""
    kept, rejected, seen = [], [], {}
    for item in items:
        result = results[item.id]
        if result["rejected"]:
            rejected.append(result["rejected"])
        rejected += [{**r, "part": True} for r in (result.get("extra") or {}).get("dropped", [])]
        clash = next((d["id"] for d in result["out"] if seen.get(d["id"], item.id) != item.id), None)
        if clash is not None:
            rejected.append(rejection(item.id, stage, "duplicate_id",
                                      f"{clash} also comes from {seen[clash]}",
                                      getattr(item, "source", "")))
            continue
        for data in result["out"]:
            if data["id"] not in seen:
                seen[data["id"]] = item.id
                kept.append(Utterance.from_dict(data))
    return kept, rejected


def input_manifest(ctx: Context, stage: Stage) -> Path:
    """The manifest ``stage`` reads: the nearest earlier enabled stage that has finished."""
    chain = ctx.pipeline.inputs_of(stage)
    for name in chain:
        if not ctx.pipeline.get(name).enabled(ctx.cfg):
            continue
        path = manifest_path(ctx.work, name)
        if path.exists():
            return path
        if (stage_dir(ctx.work, name) / "settings.json").exists():
            raise DataError(f"{stage.name}: {name} has not finished in {ctx.work}: run "
                            f"`data-tools {name}` (every shard) first")
    raise DataError(f"{stage.name}: no input in {ctx.work}: run `data-tools {chain[-1]}` first")
