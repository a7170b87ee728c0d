"""Typed dataclass configs filled from plain data: one schema, every problem in one line.

Unknown keys are errors with a "did you mean" hint; values are checked against the field types
(bool, int, float, str, Optional, Literal, list, nested dataclasses). Code below the CLI only
ever sees the typed objects.

Checks a schema declares (the loader runs them; every problem of a config is collected and
reported at once, in one :class:`ConfigError` line):

- ``RANGES``: a class attribute mapping field names to an allowed range, written as a bound
  (``"> 0"``, ``">= 1"``, ``"< 1"``, ``"<= 100"``) or an interval (``"[0, 1)"``, ``"(0, 1]"``).
  It applies to int and float fields and to every item of a list of numbers; ``None`` (an
  optional field left out) is not checked::

      @dataclass
      class OptimConfig:
          lr: float = 2e-4
          betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
          RANGES: ClassVar[dict[str, str]] = {"lr": "> 0", "betas": "[0, 1)"}

- Required fields have no default (``field: str = required("data.train=data/hessian")``):
  every one left out is named, with its example, in the one error line.

- ``RANGES`` and ``RENAMED`` are inherited: a section built on a shared base (such as
  :class:`kani_adapt.config.shared.LoraCommon`) adds its own entries to the base's.

- ``RENAMED``: a class attribute mapping a former key name to its current one, so that an old
  config gets "unknown key 'rank'; it is now called 'r'" instead of a guess. Both may be dotted
  paths below the class: a key that moved into a section (``"max_frames":
  "sampling.max_frames"``), or out of one (``"trainer.sample_max_frames":
  "sampling.max_frames"``: "config.trainer: unknown key 'sample_max_frames'; it is now
  config.sampling.max_frames"). A new place may name each entry of a section
  (``"scorers.languages": "tags.<tag>.language"``): a run folder's former map of tag -> value
  is then moved into each tag's entry (:func:`kani_adapt.config.load.migrate`).

- ``RENAMED_VALUES``: a class attribute mapping a field to its former values and their current
  names (``{"mode": {"continue_pretrain": "full"}}``): an old config gets "'continue_pretrain'
  is now called 'full'"; a run folder's own config is read with the new value.

- ``Annotated[T, check, ...]`` field types: each ``check(value) -> str | None`` returns why a
  value of type ``T`` is refused (a shared type such as :data:`kani_adapt.core.devices.Device` is
  checked the same way in every schema that uses it).

- ``WIRED`` and the path types ``LocalPath`` / ``ModelRef``: keys filled from other keys when a
  config leaves them out (``"${work_dir}/generator"``), and strings that are paths relative to
  the config's file; see :mod:`kani_adapt.config.wiring`.

- ``FROM_STRING``: a class attribute naming the one field a plain string fills, so a section
  may be written short (``en: English as spoken in England`` for ``en: {description: ...}``,
  :class:`kani_adapt.text.tags.Tag`).

- ``validate(self) -> list[str]``: a method for checks across fields; it returns the problems
  found (empty when the config is fine) and runs only when every field is of the right type
  and in range.

Every float must be finite (NaN and infinity are refused wherever a number is expected).

Reading YAML and ``key=value`` overrides: :mod:`kani_adapt.config.load`.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from kani_adapt.config import wiring
from kani_adapt.config.yaml_guard import show
from kani_adapt.core.errors import ConfigError

T = TypeVar("T")

MAX_SHOWN = 12  # problems listed in one error line


def from_dict(cls: type[T], data: dict, where: str = "config") -> T:
    """Build ``cls``; every problem found is reported in one ConfigError."""
    problems: list[str] = []
    obj = _build(cls, data, where, problems)
    if problems:
        raise ConfigError(_summary(problems))
    return obj


def _summary(problems: list[str]) -> str:
    shown = "; ".join(problems[:MAX_SHOWN])
    more = f"; and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    head = f"{len(problems)} problems: " if len(problems) > 1 else ""
    return head + shown + more


def _build(cls, data, where: str, problems: list[str]):
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping, got {show(data)}")
        return None
    if hasattr(cls, "WIRED"):
        try:
            data = wiring.wire(cls, data, where, _coerce)
        except ConfigError as err:
            problems.append(str(err))
            return None
    hints = get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    ranges, renamed = inherited(cls, "RANGES"), inherited(cls, "RENAMED")
    old_values = inherited(cls, "RENAMED_VALUES")
    kwargs, before = {}, len(problems)
    data = _moved_out(data, renamed, where, problems)
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(names)}"
            if key in renamed:
                hint = f"; it is now called {renamed[key]!r}"
            problems.append(f"{where}: unknown key {show(key)}{hint}")
            continue
        if isinstance(value, str) and value in old_values.get(key, {}):
            problems.append(f"{where}.{key}: {value!r} is now called {old_values[key][value]!r}")
            continue
        try:
            kwargs[key] = _coerce(hints[key], value, f"{where}.{key}", problems)
        except _Reported:
            pass
        except ConfigError as err:
            problems.append(str(err))
    for key in names:
        if key not in data:
            _fill_missing(cls, key, hints[key], f"{where}.{key}", kwargs, problems)
        value = kwargs[key] if key in kwargs else _default(cls, key) if key in ranges else None
        if key in ranges and value is not None and value is not dataclasses.MISSING:
            _check_range(value, ranges[key], f"{where}.{key}", problems)
    if len(problems) > before:
        return None
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as err:
        problems.append(str(err) if isinstance(err, ConfigError) else f"{where}: {err}")
        return None
    if hasattr(obj, "validate"):
        problems.extend(f"{where}: {p}" for p in obj.validate())
    return obj


def _moved_out(data: dict, renamed: dict, where: str, problems: list[str]) -> dict:
    """``data`` without the keys of its sections that moved elsewhere (dotted former names),
    each reported with its new place instead of by the section as unknown."""
    for old, new in renamed.items():
        if "." in old and get_path(data, old) is not ABSENT:
            section, _, key = old.rpartition(".")
            problems.append(f"{where}.{section}: unknown key {show(key)}; it is now {where}.{new}")
            data = copy.deepcopy(data)
            pop_path(data, old)
    return data


def inherited(cls, name: str) -> dict:
    """A class attribute mapping merged over the class's bases (the subclass wins)."""
    merged: dict = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get(name, {}))
    return merged


def required(example: str):
    """A field with no default: leaving it out is an error that shows ``example``."""
    return dataclasses.field(metadata={"example": example})


def _fill_missing(cls, key: str, tp, where: str, kwargs: dict, problems: list[str]) -> None:
    """A left-out field: required ones are reported; a section is built from nothing, so that
    the required fields inside it are reported too (and by their full dotted name)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        example = f.metadata.get("example")
        problems.append(f"{where}: required, missing" + (f" (e.g. {example})" if example else ""))
    elif dataclasses.is_dataclass(tp) and f.default_factory is tp and _has_required(tp):
        try:
            kwargs[key] = _coerce(tp, {}, where, problems)
        except ConfigError:
            pass


def _has_required(cls) -> bool:
    return any(f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               for f in dataclasses.fields(cls))


def _default(cls, key: str):
    for f in dataclasses.fields(cls):
        if f.name == key:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    return dataclasses.MISSING


_BOUND = re.compile(r"^\s*(>=|<=|>|<)\s*(\S+)\s*$")
_INTERVAL = re.compile(r"^\s*([\[(])\s*(\S+)\s*,\s*(\S+)\s*([\])])\s*$")


def _check_range(value, spec: str, where: str, problems: list[str]) -> None:
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_range(item, spec, f"{where}[{i}]", problems)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not _within(value, spec):
        problems.append(f"{where}: {show(value)} is outside {spec.strip()}")


def _within(value: float, spec: str) -> bool:
    if match := _BOUND.match(spec):
        op, bound = match.group(1), float(match.group(2))
        return {">": value > bound, ">=": value >= bound, "<": value < bound,
                "<=": value <= bound}[op]
    if match := _INTERVAL.match(spec):
        left, lo, hi, right = match.group(1), float(match.group(2)), float(match.group(3)), match.group(4)
        return ((value >= lo) if left == "[" else (value > lo)) and \
            ((value <= hi) if right == "]" else (value < hi))
    raise ValueError(f"range {spec!r}: write '> 0', '>= 1' or an interval such as '[0, 1)'")


ABSENT = object()


def get_path(data: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return ABSENT
        data = data[part]
    return data


def pop_path(data: dict, dotted: str):
    *parents, last = dotted.split(".")
    node = get_path(data, ".".join(parents)) if parents else data
    return node.pop(last) if isinstance(node, dict) and last in node else ABSENT



def set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
        if not isinstance(data, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
    data[parts[-1]] = value



def _coerce(tp, value, where: str, problems: list[str] | None = None):
    """``value`` as type ``tp``; a wrong value raises, nested dataclasses add to ``problems``."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *checks = get_args(tp)
        value = _coerce(base, value, where, problems)
        for check in checks:
            why = check(value) if callable(check) else None
            if why:
                raise ConfigError(f"{where}: {why}")
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where, problems)
            except _Reported:
                raise
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {show(value)}")
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(c) for c in get_args(tp))
            raise ConfigError(f"{where}: {show(value)} is not one of {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {show(value)}")
        (item_tp, *_) = get_args(tp) or (Any,)
        return _coerce_items(item_tp, value, where, problems)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {show(value)}")
        key_tp, val_tp = get_args(tp) or (Any, Any)
        return {_coerce(key_tp, k, where): _coerce(val_tp, v, f"{where}.{k}", problems)
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        value = value if value is not None else {}
        if isinstance(value, str) and getattr(tp, "FROM_STRING", None):
            value = {tp.FROM_STRING: value}
        if problems is None:
            return from_dict(tp, value, where)
        before = len(problems)
        obj = _build(tp, value, where, problems)
        if len(problems) > before:
            raise _Reported()
        return obj
    if tp is Any:
        return value
    if tp is str and isinstance(value, bool):
        # YAML 1.1 reads yes/no/on/off as booleans; a tag "no" (Norwegian) must not become False.
        raise ConfigError(f"{where}: YAML read {value} as a boolean; quote the text, e.g. 'no'")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {show(value)}")
    if tp is float:
        return _finite(_as_float(value, where), where)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {show(value)}")


def _coerce_items(item_tp, value: list, where: str, problems: list[str] | None) -> list:
    """Every item of a list, with every bad item reported (not only the first)."""
    if problems is None:
        return [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    items, before = [], len(problems)
    for i, v in enumerate(value):
        try:
            items.append(_coerce(item_tp, v, f"{where}[{i}]", problems))
        except _Reported:
            pass
        except ConfigError as err:
            problems.append(str(err))
    if len(problems) > before:
        raise _Reported()
    return items


class _Reported(ConfigError):
    """A nested section whose problems are already in the list."""


def _as_float(value, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected float, got {show(value)}")


def _finite(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {value} is not a finite number")
    return value
