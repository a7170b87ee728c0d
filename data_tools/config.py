"""The data config: typed dataclasses with defaults; YAML supplies values, unknown keys are errors.

``data-tools prepare data.yaml`` reads this. :data:`DataConfig` is composed from the stage
registry: the run's own keys (``work``, ``max_rejected_fraction``, ``engine``), then one section
per stage that has settings, named like it and typed by the dataclass its module defines
(``data.ingest`` is :class:`data_tools.stages.ingest.IngestConfig`, ...), then ``ray`` (where the
Ray engine runs). Each stage receives only its own section. Checks live on the sections, in the
loader's terms (kani_adapt/config/typed.py): ``RANGES`` for every number (a threshold that may lie
below zero - dB, log-probability, cosine - has none), ``Literal`` choices, and ``validate`` for
rules across keys; the loader reports every problem at once.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from data_tools import registry
from data_tools.stages.kit import Switch
from kani_adapt.config.load import read_yaml
from kani_adapt.config.typed import from_dict
from kani_adapt.config.wiring import LocalPath, resolve_paths
from kani_adapt.core.errors import ConfigError
from kani_adapt.text.tags import Tags


@dataclass
class RayConfig:
    """Where and how the Ray engine runs (``engine: ray``; data_tools/engines/ray.py)."""
    # "": a local Ray started for the run and stopped after it; "auto": the cluster this machine
    # belongs to (`ray start`); or a cluster address (host:6379, ray://host:10001). On a
    # cluster the work folder must be on a file system every node sees.
    address: str = ""
    num_cpus: int = 0  # local Ray: CPU cores it may use (0: all of this machine's)
    object_store_mb: int = 512  # local Ray: its shared-memory object store (blocks are small)
    workers: int = 0  # workers per stage at most (0: as many as the cluster's CPUs/GPUs allow)
    gpus_per_worker: float = 1.0  # a model stage on a GPU device; 0.25: four workers per GPU
    block_items: int = 256  # items per block at most (a block: one log file, one retry unit)
    max_retries: int = 3  # a block whose worker died is run again this many times
    # A cluster joined with `address` must check tokens (RAY_AUTH_MODE=token), since anyone who
    # reaches the ports of one that does not can run code on it; true joins such a cluster
    # anyway: only on a network that nobody else reaches. A local Ray always checks a token.
    allow_unauthenticated: bool = False

    RANGES: ClassVar[dict[str, str]] = {
        "num_cpus": ">= 0", "object_store_mb": ">= 64", "workers": ">= 0",
        "gpus_per_worker": "(0, 8]", "block_items": "> 0", "max_retries": ">= 0"}


@dataclass
class RunSettings:
    """The data config's keys that belong to no stage; :func:`compose` adds the sections."""

    work: LocalPath = "data_work"  # where every stage writes
    max_rejected_fraction: float = 0.5  # a stage fails past this share of rejected items
    # Where the stages' work runs: local (this process, the default) or ray (tasks and actor
    # pools on a Ray cluster, see the ray section); the results are the same.
    engine: Literal["local", "ray"] = "local"
    # What each source tag stands for (kani_adapt.text.tags.Tag): the language its texts are
    # read in (the filter's text frontend, transcript checks) and the one Whisper is told
    # (transcribe). Untagged or unlisted tags: the tag's first part (de_hessian -> de). In a
    # recipe: the recipe's `tags`.
    tags: Tags = field(default_factory=dict)

    RANGES: ClassVar[dict[str, str]] = {"max_rejected_fraction": "[0, 1]"}
    RENAMED: ClassVar[dict[str, str]] = {"transcribe.languages": "tags.<tag>.language",
                                         "filter.language": "tags.<tag>.language"}


def compose(stages: list) -> type:
    """The data config class of ``stages`` (in order): :class:`RunSettings`, one section per
    stage that has settings (``stage.section``: ``stage.config`` with its defaults), ``ray``."""
    fields, seen = [], {f.name for f in dataclasses.fields(RunSettings)} | {"ray"}
    for stage in stages:
        if stage.config is None:
            continue
        if not stage.section or stage.section in seen:
            raise ValueError(f"stage {stage.name}: section {stage.section!r} is empty or taken")
        seen.add(stage.section)
        fields.append((stage.section, stage.config, field(default_factory=stage.config)))
    fields.append(("ray", RayConfig, field(default_factory=RayConfig)))
    cls = dataclasses.make_dataclass("DataConfig", fields, bases=(RunSettings,), namespace={
        "__doc__": "The data config: the run's keys, one section per stage (the dataclass its "
                   "module defines), and where the Ray engine runs."})
    cls.__module__ = __name__  # pickled by name (Ray ships it to its workers)
    return cls


DataConfig = compose(registry.stages())

ENGINE_KEYS = ("engine", "ray")  # where the work runs: never what it gives


def results_part(cfg) -> dict:
    """The config without where it runs: what the prepared dataset depends on (a recipe that
    switches engines does not redo its later stages)."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ENGINE_KEYS}


def load_config(path: str | Path, overrides: list[str] = ()):
    """The data config of a YAML file with dotted ``key=value`` overrides, checked whole."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such data config: {path}")
    data = read_yaml(path, list(overrides))  # size, depth, duplicate keys and alias bombs guarded
    # Relative paths are relative to the config file's folder, not the shell (kani_adapt.config.wiring).
    cfg = resolve_paths(from_dict(DataConfig, normalise_raw(data), where=str(path)), path.parent)
    check_folders(cfg)
    return cfg


def check_folders(cfg) -> None:
    """Nothing is ever written into an input folder: the work and dataset folders lie apart
    from every source (checked before anything is created)."""
    outputs = [("work", Path(cfg.work))] + ([("write.out", Path(cfg.write.out))]
                                            if cfg.write.out else [])
    for src in cfg.ingest.sources:
        root = Path(src.path).resolve()
        for key, out in outputs:
            out = out.resolve()
            if out == root or root in out.parents or out in root.parents:
                raise ConfigError(f"{key} folder {out} and input folder {root} overlap; choose a "
                                  f"{key} folder outside the recordings (and not above them)")


def switches(sections: list[tuple[str, type]]) -> list[tuple[str, str]]:
    """(section, key) of every auto/on/off switch of the stages' sections."""
    return [(name, f.name) for name, cls in sections for f in dataclasses.fields(cls)
            if typing.get_type_hints(cls).get(f.name) == Switch]


def normalise_raw(data):
    """YAML 1.1 reads on/off as booleans; for the auto/on/off switches that is what was meant."""
    for name, key in switches(registry.sections()):
        section = data.get(name) if isinstance(data, dict) else None
        if isinstance(section, dict) and isinstance(section.get(key), bool):
            section[key] = "on" if section[key] else "off"
    return data
