"""Model files from users or downloads, checked before any library parses them.

A crafted or damaged file must end in one line naming it (a :class:`CheckpointError`), never in
a library's traceback, and must never run code: torch files load with ``weights_only=True``,
and a safetensors header is checked against the file's size before the weights are read.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

from kani_adapt.core.errors import CheckpointError

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


# Bits per element of every dtype the safetensors format names.
DTYPE_BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
              "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
              "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "C64": 64,
              "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}


def check_safetensors(path: Path) -> None:
    """The header is fully valid before the library reads it: every entry has a known dtype,
    a shape whose size matches its byte span, and the spans tile the data without overlap
    or gap, ending where the file ends (a cut download or a crafted header fails here)."""
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
    spans = sorted((_span(path, name, entry), name) for name, entry in header.items()
                   if name != "__metadata__")
    end = 0
    for (start, stop), name in spans:
        if start != end:
            why = "overlaps the tensor before it" if start < end else "leaves a gap before it"
            raise CheckpointError(f"{path}: corrupt safetensors header (tensor {name[:60]!r} "
                                  f"{why}); download or export it again")
        end = stop
    if 8 + length + end != size:
        state = "truncated" if 8 + length + end > size else "has bytes no tensor describes"
        raise CheckpointError(f"{path}: {state} ({size} bytes, the header describes "
                              f"{8 + length + end}); download or export it again")


def _span(path: Path, name: str, entry) -> tuple[int, int]:
    """(start, end) of one header entry, after checking its dtype and shape against them."""
    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: corrupt safetensors header (tensor {name[:60]!r}: {why})")

    if not isinstance(entry, dict):
        raise bad("not an object")
    offsets, shape, dtype = entry.get("data_offsets"), entry.get("shape"), entry.get("dtype")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
        raise bad(f"data_offsets {str(offsets)[:40]}")
    if dtype not in DTYPE_BITS:
        raise bad(f"unknown dtype {str(dtype)[:20]!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise bad(f"shape {str(shape)[:40]}")
    numel = 1
    for dim in shape:
        numel *= dim
    nbytes, rest = divmod(numel * DTYPE_BITS[dtype], 8)
    if rest or nbytes != offsets[1] - offsets[0]:
        raise bad(f"shape {shape[:6]} of {dtype} needs {nbytes} bytes, its offsets span "
                  f"{offsets[1] - offsets[0]}")
    return offsets[0], offsets[1]


def check_values(path: Path, data: dict, spec: dict, what: str,
                 nullable: tuple[str, ...] = ()) -> None:
    """Each key of ``spec`` ({key: (int or float, lowest, highest)}) that ``data`` sets holds
    a number of that type within the bounds (``null`` only where ``nullable`` says the library
    reads it as "not set"); every problem is named in one line."""
    problems = []
    for key, (kind, low, high) in spec.items():
        if key not in data or (data[key] is None and key in nullable):
            continue
        value = data[key]
        if value is None:
            problems.append(f"{key} is null, not " + ("an integer" if kind is int else "a number"))
            continue
        number = type(value) is int or (kind is float and type(value) is float)
        if not number or (kind is float and not math.isfinite(value)):
            problems.append(f"{key} is {str(value)[:30]!r}, not "
                            + ("an integer" if kind is int else "a finite number"))
        elif not low <= value <= high:
            problems.append(f"{key} {value} is outside {low:g}..{high:g}")
    if problems:
        raise CheckpointError(f"{path}: {'; '.join(problems[:6])}; is it {what}? fix it or "
                              "download it again")


def available_memory() -> int | None:
    """Bytes this process can still allocate (the machine's available memory, within its
    cgroup's limit and the process's address-space limit); None where it cannot be told."""
    import resource

    free = []
    try:
        meminfo = Path("/proc/meminfo").read_text()
        free.append(int(re.search(r"MemAvailable:\s+(\d+) kB", meminfo).group(1)) * 1024)
    except (OSError, AttributeError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            free.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    page = os.sysconf("SC_PAGE_SIZE")
    used = [int(v) * page for v in Path("/proc/self/statm").read_text().split()]
    for limit, now in ((resource.RLIMIT_AS, used[0]), (resource.RLIMIT_DATA, used[5])):
        soft = resource.getrlimit(limit)[0]
        if soft != resource.RLIM_INFINITY:
            free.append(soft - now)
    return max(0, min(free))


def check_fits(path: Path, params: int, needed: int, what: str) -> None:
    """Refuse a model whose config implies more memory than this process can get, before
    anything is allocated (a crafted config.json must not end in an allocator's traceback)."""
    free = available_memory()
    if free is not None and needed > free:
        raise CheckpointError(
            f"{path}: this {what} has {params / 1e9:.2f} G parameters and needs about "
            f"{needed / 2**30:.1f} GiB to load, but {free / 2**30:.1f} GiB are available; check "
            "its sizes, or load it on a machine with more memory")


def check_model_folder(path: Path) -> Path:
    """config.json and every top-level safetensors file of a model folder, checked."""
    path = Path(path)
    if (path / "config.json").is_file():
        read_json_object(path / "config.json")
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights)
    return path
