"""One schema, one loader: typed dataclass configs filled from YAML and ``key=value`` overrides.

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
  :class:`kani_adapt.common_config.LoraCommon`) adds its own entries to the base's.

- ``RENAMED``: a class attribute mapping a former key name to its current one, so that an old
  config gets "unknown key 'rank'; it is now called 'r'" instead of a guess. Both may be dotted
  paths below the class: a key that moved into a section (``"max_frames":
  "sampling.max_frames"``), or out of one (``"trainer.sample_max_frames":
  "sampling.max_frames"``: "config.trainer: unknown key 'sample_max_frames'; it is now
  config.sampling.max_frames").

- ``Annotated[T, check, ...]`` field types: each ``check(value) -> str | None`` returns why a
  value of type ``T`` is refused (a shared type such as :data:`kani_adapt.devices.Device` is
  checked the same way in every schema that uses it).

- ``WIRED`` and the path types ``LocalPath`` / ``ModelRef``: keys filled from other keys when a
  config leaves them out (``"${work_dir}/generator"``), and strings that are paths relative to
  the config's file; see :mod:`kani_adapt.wiring`.

- ``validate(self) -> list[str]``: a method for checks across fields; it returns the problems
  found (empty when the config is fine) and runs only when every field is of the right type
  and in range.

Every float must be finite (NaN and infinity are refused wherever a number is expected).

Reading YAML is guarded against hostile files: at most ``MAX_BYTES`` bytes, UTF-8 only, at most
``MAX_DEPTH`` levels of nesting, duplicate keys refused (naming the key and both lines), and
anchors/aliases allowed only while the expanded document stays under ``MAX_NODES`` nodes (a
"billion laughs" file is refused before anything is expanded). Error messages show values
shortened, never expanded.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import reprlib
import types
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from kani_adapt import wiring
from kani_adapt.errors import ConfigError, describe_os_error

T = TypeVar("T")

MAX_BYTES = 1 << 20  # a config is a page of settings, not data
MAX_DEPTH = 32  # nesting levels (mappings and lists)
MAX_NODES = 100_000  # values in the document with every alias expanded
MAX_SHOWN = 12  # problems listed in one error line


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Build ``cls`` from a YAML file (optional) and dotted ``key=value`` overrides."""
    return from_dict(cls, read_yaml(path, overrides), where=str(path) if path else "config")


def load_saved_config(cls: type[T], path: str | Path, overrides: list[str] = ()) -> T:
    """A config this tool wrote itself (a run folder's ``config.yaml``): keys renamed since
    (``RENAMED``) are read under their new names, so a run made by an older version resumes."""
    return from_dict(cls, migrate(cls, read_yaml(path, overrides)), where=str(path))


def migrate(cls, data):
    """``data`` with every former key of ``cls`` and its sections moved to its current place (a
    value already there wins: a key renamed twice into one keeps the first)."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return data
    data, hints = copy.deepcopy(data), get_type_hints(cls)
    for old, new in _inherited(cls, "RENAMED").items():
        value = _pop_path(data, old)
        if value is not _ABSENT and _get_path(data, new) is _ABSENT:
            _set_dotted(data, new, value)
    return {key: migrate(hints[key], value) if key in hints else value for key, value in data.items()}


_ABSENT = object()


def _get_path(data: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return _ABSENT
        data = data[part]
    return data


def _pop_path(data: dict, dotted: str):
    *parents, last = dotted.split(".")
    node = _get_path(data, ".".join(parents)) if parents else data
    return node.pop(last) if isinstance(node, dict) and last in node else _ABSENT


def read_yaml(path: str | Path | None, overrides: list[str] = ()) -> dict:
    """The raw mapping of a YAML file (optional) with dotted ``key=value`` overrides applied."""
    data: dict = {}
    if path is not None:
        data = parse_yaml(_read_text(Path(path)), str(path)) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.lr=1e-4)")
        value = parse_yaml(raw, f"override {key.strip()}") if raw.strip() else ""
        _set_dotted(data, key.strip(), value)
    return data


def _read_text(path: Path) -> str:
    try:
        if path.is_file() and path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size} bytes, more than a config may hold "
                              f"({MAX_BYTES} bytes); is it the right file?")
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({describe_os_error(err).split(':')[0]})") from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{path}: more than {MAX_BYTES} bytes, more than a config may hold")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset "
                          f"{err.start}); save it as UTF-8") from None


def read_yaml_file(path: str | Path, yaml12_floats: bool = False):
    """Plain data of any YAML file (not only a config), through every guard of this module."""
    return parse_yaml(_read_text(Path(path)), str(path), yaml12_floats)


def parse_yaml(text: str, where: str, yaml12_floats: bool = False):
    """Plain data from YAML text, with the guards of this module; errors are one line.
    ``yaml12_floats``: ``1e-4`` is a number, as OmegaConf (and so NeMo) reads it."""
    loader = (_Yaml12FloatsLoader if yaml12_floats else _GuardedLoader)(text)
    try:
        return loader.get_single_data()
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    except yaml.MarkedYAMLError as err:
        line = f" at line {err.problem_mark.line + 1}" if err.problem_mark else ""
        raise ConfigError(f"{where}: invalid YAML{line}: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: invalid YAML: {str(err).splitlines()[0]}") from None
    finally:
        loader.dispose()


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that bounds nesting and alias expansion and refuses duplicate keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        # Counted while composing (before Python's recursion limit or any expansion is hit).
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"nested deeper than {MAX_DEPTH} levels (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise ConfigError(f"aliases expand to more than {MAX_NODES} values (a YAML bomb?); "
                              "write the values out")
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                if key in seen and key != "<<":
                    raise ConfigError(f"duplicate key {_show(key)} at line {key_node.start_mark.line + 1} "
                                      f"(first at line {seen[key]}); keep one")
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


class _Yaml12FloatsLoader(_GuardedLoader):
    """The guarded loader, reading exponents without a dot or sign (``2e-4``, ``1e5``) as floats
    the way YAML 1.2 and OmegaConf do (YAML 1.1 leaves them strings)."""


_Yaml12FloatsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _expanded_size(node, memo: dict) -> int:
    """Values in ``node`` with aliases expanded; shared nodes are counted from the memo."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a cycle counts once instead of recursing forever
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[id(node)] = min(size, MAX_NODES + 1)
    return memo[id(node)]


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = 4
_REPR.maxlevel = 2


def _show(value) -> str:
    """A value for an error message: short, and never expanded in full."""
    return _REPR.repr(value)


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
        problems.append(f"{where}: expected a mapping, got {_show(data)}")
        return None
    if hasattr(cls, "WIRED"):
        try:
            data = wiring.wire(cls, data, where, _coerce)
        except ConfigError as err:
            problems.append(str(err))
            return None
    hints = get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    ranges, renamed = _inherited(cls, "RANGES"), _inherited(cls, "RENAMED")
    kwargs, before = {}, len(problems)
    data = _moved_out(data, renamed, where, problems)
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(names)}"
            if key in renamed:
                hint = f"; it is now called {renamed[key]!r}"
            problems.append(f"{where}: unknown key {_show(key)}{hint}")
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
        if "." in old and _get_path(data, old) is not _ABSENT:
            section, _, key = old.rpartition(".")
            problems.append(f"{where}.{section}: unknown key {_show(key)}; it is now {where}.{new}")
            data = copy.deepcopy(data)
            _pop_path(data, old)
    return data


def _inherited(cls, name: str) -> dict:
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
        problems.append(f"{where}: {_show(value)} is outside {spec.strip()}")


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


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def dump_yaml(obj, path: Path) -> None:
    from kani_adapt import atomic

    atomic.write_text(path, yaml.safe_dump(to_dict(obj), sort_keys=False))


def _set_dotted(data: dict, key: str, value: Any) -> None:
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
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {_show(value)}")
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(c) for c in get_args(tp))
            raise ConfigError(f"{where}: {_show(value)} is not one of {choices}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_show(value)}")
        (item_tp, *_) = get_args(tp) or (Any,)
        return _coerce_items(item_tp, value, where, problems)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_show(value)}")
        key_tp, val_tp = get_args(tp) or (Any, Any)
        return {_coerce(key_tp, k, where): _coerce(val_tp, v, f"{where}.{k}", problems)
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        value = value if value is not None else {}
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
        raise ConfigError(f"{where}: expected true or false, got {_show(value)}")
    if tp is float:
        return _finite(_as_float(value, where), where)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {_show(value)}")


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
    raise ConfigError(f"{where}: expected float, got {_show(value)}")


def _finite(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {value} is not a finite number")
    return value
