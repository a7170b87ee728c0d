"""Loading a config: a YAML file (through the guard) and dotted ``key=value`` overrides, filled
into its typed schema (:mod:`kani_adapt.config.typed`); a run folder's own ``config.yaml`` is
read with renamed keys moved to their new places, so an older run resumes.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import TypeVar, get_type_hints

import yaml

from kani_adapt.config.typed import ABSENT, from_dict, get_path, inherited, pop_path, set_dotted
from kani_adapt.config.yaml_guard import parse_yaml, read_text
from kani_adapt.core.errors import ConfigError

T = TypeVar("T")


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Build ``cls`` from a YAML file (optional) and dotted ``key=value`` overrides."""
    return from_dict(cls, read_yaml(path, overrides), where=str(path) if path else "config")


def load_saved_config(cls: type[T], path: str | Path, overrides: list[str] = ()) -> T:
    """A config this tool wrote itself (a run folder's ``config.yaml``): keys renamed since
    (``RENAMED``) are read under their new names, so a run made by an older version resumes."""
    return from_dict(cls, migrate(cls, read_yaml(path, overrides)), where=str(path))


EACH = "<tag>"  # in a new place: a former map of name -> value went into each name's entry


def migrate(cls, data):
    """``data`` with every former key of ``cls`` and its sections moved to its current place (a
    value already there wins: a key renamed twice into one keeps the first), and every former
    value (``RENAMED_VALUES``) under its current name. A former map moved into each entry of a
    section (``"scorers.languages": "tags.<tag>.language"``) is spread over the entries it names."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return data
    data, hints = copy.deepcopy(data), get_type_hints(cls)
    for old, new in inherited(cls, "RENAMED").items():
        value = pop_path(data, old)
        if value is ABSENT:
            continue
        moves = ({new.replace(EACH, str(k)): v for k, v in value.items()}
                 if EACH in new and isinstance(value, dict) else {new: value})
        for place, v in moves.items():
            if get_path(data, place) is ABSENT:
                set_dotted(data, place, v)
    for key, values in inherited(cls, "RENAMED_VALUES").items():
        if isinstance(data.get(key), str) and data[key] in values:
            data[key] = values[data[key]]
    return {key: migrate(hints[key], value) if key in hints else value for key, value in data.items()}


def read_yaml(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """The raw mapping of a YAML file (optional) with dotted ``key=value`` overrides applied."""
    data: dict = {}
    if path is not None:
        data = parse_yaml(read_text(Path(path)), str(path)) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    for item in overrides:
        set_dotted(data, *parse_override(item))
    return data


def parse_override(item: str) -> tuple[str, object]:
    """One ``key=value`` override: its dotted key, and its value read as YAML (``[a, b]`` a list,
    ``1e-4`` a number, nothing an empty string). The one reader of overrides: every command of
    both CLIs hands them here (collected by :mod:`kani_adapt.core.cli_kit`)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.lr=1e-4)")
    return key, parse_yaml(raw, f"override {key}") if raw.strip() else ""


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def dump_yaml(obj, path: Path) -> None:
    from kani_adapt.core import atomic

    atomic.write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))
