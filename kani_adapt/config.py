"""One schema, one loader: typed dataclass configs filled from YAML and ``key=value`` overrides.

Unknown keys are errors with a "did you mean" hint; values are checked against the field types
(bool, int, float, str, Optional, Literal, list, nested dataclasses). Code below the CLI only
ever sees the typed objects.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from kani_adapt.errors import ConfigError

T = TypeVar("T")


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Build ``cls`` from a YAML file (optional) and dotted ``key=value`` overrides."""
    return from_dict(cls, read_yaml(path, overrides), where=str(path) if path else "config")


def read_yaml(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """The raw mapping of a YAML file (optional) with dotted ``key=value`` overrides applied."""
    data: dict = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{path}: cannot read YAML ({err})") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.lr=1e-4)")
        _set_dotted(data, key.strip(), yaml.safe_load(raw) if raw.strip() else "")
    return data


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{where}: {err}") from err


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def dump_yaml(obj, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(obj), sort_keys=False))


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
    data[parts[-1]] = value


def _coerce(tp, value, where: str):
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(c) for c in get_args(tp))
            raise ConfigError(f"{where}: {value!r} is not one of {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        return [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_tp, val_tp = get_args(tp) or (Any, Any)
        return {_coerce(key_tp, k, where): _coerce(val_tp, v, f"{where}.{k}")
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value if value is not None else {}, where)
    if tp is Any:
        return value
    if tp is str and isinstance(value, bool):
        # YAML 1.1 reads yes/no/on/off as booleans; a tag "no" (Norwegian) must not become False.
        raise ConfigError(f"{where}: YAML read {value} as a boolean; quote the text, e.g. 'no'")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


