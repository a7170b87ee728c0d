"""Reading YAML without trusting it: every config and every YAML file a user hands in.

Guarded against hostile files: at most ``MAX_BYTES`` bytes, UTF-8 only, at most ``MAX_DEPTH``
levels of nesting, duplicate keys refused (naming the key and both lines), and anchors/aliases
allowed only while the expanded document stays under ``MAX_NODES`` nodes (a "billion laughs"
file is refused before anything is expanded). Error messages show values shortened, never
expanded (:func:`show`).
"""
from __future__ import annotations

import re
import reprlib
from pathlib import Path

import yaml

from kani_adapt.core.errors import ConfigError, describe_os_error

MAX_BYTES = 1 << 20  # a config is a page of settings, not data
MAX_DEPTH = 32  # nesting levels (mappings and lists)
MAX_NODES = 100_000  # values in the document with every alias expanded


def read_text(path: Path) -> str:
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
    return parse_yaml(read_text(Path(path)), str(path), yaml12_floats)


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
                    raise ConfigError(f"duplicate key {show(key)} at line {key_node.start_mark.line + 1} "
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


def show(value) -> str:
    """A value for an error message: short, and never expanded in full."""
    return _REPR.repr(value)
