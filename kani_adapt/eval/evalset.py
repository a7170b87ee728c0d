"""Eval sets: a JSONL file (one object per line) or a YAML list of items.

Each item: ``text`` and ``speaker`` (required), ``tag`` (language/accent, optional),
``reference`` (an audio file of that speaker: conditions the voice when no embedding is given,
and anchors similarity), ``reference_text`` (its transcript, for the codec ceiling's CER and
the speaker's speaking rate), ``embedding`` (a .npy file with the 128-d speaker embedding),
``base`` (true for base-language replay items: the forgetting line), ``id`` (default: line
number). Relative paths are relative to the eval-set file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kani_adapt.core.errors import DataError

FIELDS = {"id", "text", "tag", "speaker", "reference", "reference_text", "embedding", "base"}


@dataclass(frozen=True, eq=False)
class EvalItem:
    id: str
    text: str
    speaker: str
    tag: str | None = None
    reference: Path | None = None
    reference_text: str | None = None
    embedding: Path | None = None
    base: bool = False
    codes: np.ndarray | None = field(default=None, repr=False)  # dataset items: the recording's codes
    vector: np.ndarray | None = field(default=None, repr=False)  # dataset items: speaker embedding

    @property
    def reference_key(self) -> str | None:
        """Where the reference audio comes from: a file, or the item's own dataset codes."""
        if self.reference is not None:
            return str(self.reference)
        return f"codes:{self.id}" if self.codes is not None else None


def _raw_items(path: Path) -> list:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(f"{path}: cannot read the eval set ({err})") from err
    if path.suffix == ".jsonl":
        items = []
        for n, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{n}: not a JSON object ({err.msg})") from err
        return items
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            items = yaml.safe_load(raw) or []
        except yaml.YAMLError as err:
            raise DataError(f"{path}: cannot parse YAML ({err})") from err
        if not isinstance(items, list):
            raise DataError(f"{path}: the eval set must be a YAML list of items (- text: ...)")
        return items
    raise DataError(f"{path}: an eval set is a .jsonl or .yaml file")


def _item(raw, n: int, folder: Path, where: str) -> EvalItem:
    if not isinstance(raw, dict):
        raise DataError(f"{where} item {n}: expected a mapping with text and speaker")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise DataError(f"{where} item {n}: unknown keys {unknown}; known: {sorted(FIELDS)}")
    for key in ("text", "speaker"):
        if not str(raw.get(key) or "").strip():
            raise DataError(f"{where} item {n}: {key!r} is missing or empty")

    def path_of(key: str) -> Path | None:
        if not raw.get(key):
            return None
        p = Path(str(raw[key])).expanduser()
        p = p if p.is_absolute() else folder / p
        if not p.is_file():
            raise DataError(f"{where} item {n}: {key} {p} does not exist")
        return p
    return EvalItem(id=str(raw.get("id", n)), text=str(raw["text"]), speaker=str(raw["speaker"]),
                    tag=str(raw["tag"]).lower() if raw.get("tag") else None,
                    reference=path_of("reference"), reference_text=raw.get("reference_text"),
                    embedding=path_of("embedding"), base=bool(raw.get("base", False)))


def load_eval_set(path: str | Path) -> list[EvalItem]:
    path = Path(path)
    items = [_item(raw, n, path.parent, str(path)) for n, raw in enumerate(_raw_items(path), 1)]
    if not items:
        raise DataError(f"{path}: the eval set is empty")
    ids = [i.id for i in items]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise DataError(f"{path}: duplicate item ids {dupes[:5]}; ids must be unique")
    return items
