"""Model files from users or downloads, checked before any library parses them.

A crafted or damaged file must end in one line naming it (a :class:`CheckpointError`), never in
a library's traceback, and must never run code: torch files load with ``weights_only=True``,
and a safetensors header is checked against the file's size before the weights are read.
"""
from __future__ import annotations

import json
import pickle
import re
import struct
import zipfile
from pathlib import Path

from kani_adapt.errors import CheckpointError

MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header


def torch_load(path: str | Path, shown: str | None = None):
    """``torch.load(weights_only=True)`` whose every failure is one line naming the file."""
    import torch

    name = shown or str(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{name}: refused, it needs unpickling ({_first_global(err)}), which could run code; "
            "kani-adapt files hold plain tensors only") from None
    except OSError as err:
        raise CheckpointError(f"{name}: cannot read ({err.strerror or err})") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, struct.error) as err:
        raise CheckpointError(f"{name}: unreadable, truncated or not a torch file "
                              f"({_first_line(err)})") from None


def _first_global(err: Exception) -> str:
    match = re.search(r"GLOBAL ([\w.]+)|Unsupported global: GLOBAL ([\w.]+)", str(err))
    return f"it names {match.group(1) or match.group(2)}" if match else _first_line(err)[:120]


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object (a model's config.json)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not UTF-8 text; is it the model's config.json?") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: "
                              f"{err.msg})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object of settings, got {type(data).__name__}")
    return data


def check_safetensors(path: Path) -> None:
    """The header parses and every tensor lies inside the file (a cut download fails here)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: too short to be a safetensors file ({size} bytes)")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            raise CheckpointError(f"{path}: corrupt safetensors header (claims {length} bytes, "
                                  f"the file has {size}); download or export it again")
        raw = f.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: corrupt safetensors header (not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
            raise CheckpointError(f"{path}: corrupt safetensors header (entry {name[:60]!r})")
        end = max(end, offsets[1])
    if 8 + length + end > size:
        raise CheckpointError(f"{path}: truncated ({size} bytes, the header describes "
                              f"{8 + length + end}); download or export it again")


def check_model_folder(path: Path) -> Path:
    """config.json and every top-level safetensors file of a model folder, checked."""
    path = Path(path)
    if (path / "config.json").is_file():
        read_json_object(path / "config.json")
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights)
    return path
