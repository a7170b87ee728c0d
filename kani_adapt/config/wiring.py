"""How one config's keys refer to each other, and which of its strings are paths: declared in the
schema, applied by the loader (:mod:`kani_adapt.config`), so no caller wires dicts by hand.

- ``WIRED``: a class attribute mapping a dotted key to where its value comes from when the
  config leaves it out: a template of other keys of the class, ``"${work_dir}/generator"``, or
  a tuple of templates, the first whose keys all have a value winning. ``"${key}"`` alone keeps
  the value's type (a seed stays a number). A key inside an optional section (``Optional[...] =
  None``) is filled only where the config gives that section. The value a template names is
  checked against its own type first: a wrong one is not copied, so it is reported once, at its
  own key. The config's own strings may use the same references (``path: ${work_dir}/rec``).

- Path types: a field typed :data:`LocalPath` (a file or folder on this machine) or
  :data:`ModelRef` (a local path, a hub id ``org/name`` or a size name) is a path relative to the
  config's folder when the config is loaded with one (:func:`resolve_paths`): a ``LocalPath``
  always, a ``ModelRef`` where it is written ``./x`` or ``../x`` or names something beside the
  config. Elsewhere (``kani-adapt train CONFIG``) they stay as written, relative to the shell.
"""
from __future__ import annotations

import copy
import dataclasses
import re
import types
from pathlib import Path
from typing import Annotated, Union, get_args, get_origin, get_type_hints

from kani_adapt.core.errors import ConfigError


class _PathKind:
    def __init__(self, always: bool):
        self.always = always  # resolved whatever it names (a LocalPath), or only where it exists


LocalPath = Annotated[str, _PathKind(always=True)]
ModelRef = Annotated[str, _PathKind(always=False)]
_REFERENCE = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")
_ABSENT = object()


def wire(cls, data: dict, where: str, coerce) -> dict:
    """``data`` with the references of its strings resolved and every ``WIRED`` key it leaves
    out filled in (a copy; ``cls`` without ``WIRED`` gives ``data`` back). ``coerce(type, value,
    where)`` is the loader's check of a value (it raises ConfigError)."""
    wired = getattr(cls, "WIRED", None)
    if not wired or not isinstance(data, dict):
        return data
    data = copy.deepcopy(data)
    for target, templates in wired.items():
        if _get(data, target) is not _ABSENT or not _may_fill(cls, data, target):
            continue
        for template in (templates,) if isinstance(templates, str) else templates:
            value = _render(cls, data, template, coerce)
            if value is not _ABSENT:
                _put(data, target, value)
                break
    return _substitute(cls, data, data, where, coerce)


def _render(cls, data: dict, template: str, coerce):
    """The template's value, or _ABSENT when a key it names has no (valid) value."""
    names = _REFERENCE.findall(template)
    values = {name: _value(cls, data, name, coerce) for name in names}
    if any(v is _ABSENT or v is None or v == "" for v in values.values()):
        return _ABSENT
    if _REFERENCE.fullmatch(template):
        return values[names[0]]
    return _REFERENCE.sub(lambda m: str(values[m.group(1)]), template)


def _value(cls, data: dict, dotted: str, coerce):
    """A key's value in ``data`` (else its schema default), _ABSENT where it is not valid or
    lies in an optional section the config does not give."""
    tp, default = _field(cls, dotted)
    if tp is _ABSENT:
        raise ValueError(f"{cls.__name__}.WIRED names {dotted!r}, which is not one of its keys")
    value = _get(data, dotted)
    if value is _ABSENT:
        return default if _may_fill(cls, data, dotted) else _ABSENT
    try:
        coerce(tp, value, dotted)
    except ConfigError:
        return _ABSENT
    return value


def _field(cls, dotted: str):
    """(type, default) of a dotted key of ``cls``; _ABSENT for a key it does not have (or a
    default that cannot be made: a section with required keys)."""
    tp, f = cls, None
    for part in dotted.split("."):
        owner = _dataclass_of(tp)
        fields = {f.name: f for f in dataclasses.fields(owner)} if owner else {}
        if part not in fields:
            return _ABSENT, _ABSENT
        f, tp = fields[part], get_type_hints(owner, include_extras=True)[part]
    if f.default is not dataclasses.MISSING:
        return tp, f.default
    try:
        default = f.default_factory()
    except TypeError:
        return tp, _ABSENT
    return tp, dataclasses.asdict(default) if dataclasses.is_dataclass(default) else default


def _dataclass_of(tp):
    """The dataclass a (possibly Optional) field type holds, else None."""
    if get_origin(tp) in (Union, types.UnionType):
        tp = next((a for a in get_args(tp) if a is not type(None)), None)
    return tp if dataclasses.is_dataclass(tp) else None


def _may_fill(cls, data: dict, target: str) -> bool:
    """Whether the sections above ``target`` are there, or may be made (not optional ones)."""
    node, tp = data, cls
    for part in target.split(".")[:-1]:
        hints = get_type_hints(_dataclass_of(tp))
        tp = hints[part]
        optional = get_origin(tp) in (Union, types.UnionType)
        value = node.get(part) if isinstance(node, dict) else None
        if value is None and optional:
            return False
        if value is not None and not isinstance(value, dict):
            return False  # the wrong type: the loader reports it
        node = value or {}
    return True


def _get(data, dotted: str):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return _ABSENT
        data = data[part]
    return data


def _put(data: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        if data.get(part) is None:
            data[part] = {}
        data = data[part]
    data[last] = value


def _substitute(cls, root: dict, node, where: str, coerce):
    """Every ``${key}`` in the strings of ``node`` replaced by that key's value."""
    if isinstance(node, dict):
        return {k: _substitute(cls, root, v, f"{where}.{k}", coerce) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(cls, root, v, f"{where}[{i}]", coerce) for i, v in enumerate(node)]
    if isinstance(node, str) and _REFERENCE.search(node):
        unknown = [n for n in _REFERENCE.findall(node) if _field(cls, n)[0] is _ABSENT]
        value = _ABSENT if unknown else _render(cls, root, node, coerce)
        if value is _ABSENT:
            what = f"{unknown[0]!r}, not a key of the config" if unknown else "a key without a value"
            raise ConfigError(f"{where}: {node!r} names {what} (e.g. ${{work_dir}})")
        return value
    return node


def resolve_paths(obj, base: str | Path):
    """``obj`` (a loaded config) with its LocalPath and ModelRef fields taken relative to ``base``."""
    base = Path(base)
    hints = get_type_hints(type(obj), include_extras=True)
    for f in dataclasses.fields(obj):
        value, tp = getattr(obj, f.name), hints[f.name]
        if dataclasses.is_dataclass(value):
            resolve_paths(value, base)
        elif isinstance(value, list):
            for item in value:
                if dataclasses.is_dataclass(item):
                    resolve_paths(item, base)
        elif isinstance(value, str) and (kind := _path_kind(tp)) is not None:
            resolved = _relative(value, base, kind)
            if resolved != value:
                object.__setattr__(obj, f.name, resolved)
    return obj


def _path_kind(tp) -> _PathKind | None:
    if get_origin(tp) in (Union, types.UnionType):
        return next((k for a in get_args(tp) if (k := _path_kind(a)) is not None), None)
    if get_origin(tp) is Annotated:
        return next((m for m in get_args(tp)[1:] if isinstance(m, _PathKind)), None)
    return None


def _relative(value: str, base: Path, kind: _PathKind) -> str:
    if not value or Path(value).is_absolute():
        return value
    if kind.always or value.startswith(("./", "../")) or (base / value).exists():
        return str((base / value).resolve())
    return value
