"""Why a recipe stage runs or is skipped.

A stage is judged by its own settings (every key, as the recipe spells it) and by the content of
what it reads (:mod:`kani_adapt.recipes.contents`), both compared with what ``stages.json``
recorded when it last ran. It runs when it never ran, when one of its settings changed, when
something it reads has other content, or to finish an interrupted run; otherwise it is skipped.
Stages before it reach it only through the files it reads: one that ran again and wrote the same
content stops the cascade there.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

SHOWN_KEYS = 4  # changed keys named in one line; the rest are counted
SHOWN_VALUE = 40  # characters of a value shown in a line


def flatten(settings: dict[str, object]) -> dict[str, object]:
    """``{"codec_check": CodecCheckStage(max_clips=12, ...)}`` -> ``{"codec_check.max_clips":
    12, ...}``: every leaf by its dotted key, as a JSON value (lists are leaves)."""
    out: dict[str, object] = {}

    def walk(prefix: str, value) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            out[prefix] = json.loads(json.dumps(value, default=str))

    for prefix, value in settings.items():
        walk(prefix, value)
    return out


def local_paths(flat: dict[str, object], leave_out: list[Path], keys_left_out=()) -> list[Path]:
    """The existing local files and folders the settings name (absolute paths: the recipe's
    loader made them so; also inside lists, as data.ingest.sources), apart from those under
    ``leave_out`` (what the stage writes) and the keys in ``keys_left_out``."""
    found: list[Path] = []
    for key, value in flat.items():
        if key in keys_left_out:
            continue
        for text in _strings(value):
            path = Path(text)
            if (text.startswith("/") and path.exists() and path not in found
                    and not any(_within(path, w) for w in leave_out)):
                found.append(path)
    return found


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)


def _within(path: Path, folder: Path) -> bool:
    path, folder = path.absolute(), Path(folder).absolute()
    return path == folder or folder in path.parents


@dataclass
class Decision:
    run: bool
    why: str  # one line: why it runs, or why it is skipped
    clean: bool = False  # remove (or set aside) what an earlier run wrote first


def decide(previous: dict, settings: dict, inputs: dict, work: Path, chain: str = "") -> Decision:
    """What to do with a stage, given its record in stages.json (``{}``: none) and its settings
    and input digests now (``chain``: its :func:`legacy_hash`, for a record an earlier
    kani-adapt wrote)."""
    if not previous:
        return Decision(True, "running: first run")
    if "settings" not in previous and "hash" in previous:
        return _decide_recorded(previous, chain)
    changes = [*changed_settings(previous.get("settings", {}), settings),
               *changed_inputs(previous.get("inputs", {}), inputs, work)]
    if previous.get("status") == "started":
        if changes:
            return Decision(True, f"starting over: {'; '.join(changes)} since the interrupted run",
                            clean=True)
        return Decision(True, "resuming an interrupted run")
    if changes:
        return Decision(True, f"running: {'; '.join(changes)}", clean=True)
    return Decision(False, "skipped: same settings and inputs as its last run")


def _decide_recorded(previous: dict, chain: str) -> Decision:
    """A record an earlier kani-adapt wrote holds a hash of the configs of the stage and those
    before it, no settings: the same hash is the same stage."""
    same = previous["hash"] == chain
    if previous.get("status") == "started":
        return (Decision(True, "resuming an interrupted run") if same else
                Decision(True, "starting over: its config changed since the interrupted run", True))
    if same:
        return Decision(False, "skipped: same config as its last run (recorded by an earlier "
                               "kani-adapt)")
    return Decision(True, "running: its config or one before it changed since its last run "
                          "(recorded by an earlier kani-adapt)", clean=True)


def legacy_hash(config, previous: str) -> str:
    """The hash an earlier kani-adapt recorded: a stage's config chained with those before it."""
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    if isinstance(data, tuple):
        data = [dataclasses.asdict(d) if dataclasses.is_dataclass(d) else d for d in data]
    text = json.dumps(data, sort_keys=True, default=str) + previous
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def changed_settings(before: dict, now: dict) -> list[str]:
    keys = sorted(k for k in before.keys() | now.keys() if before.get(k, _ABSENT) != now.get(k, _ABSENT))
    if not keys:
        return []
    shown = [f"{k} ({_shown(before.get(k, _ABSENT))} -> {_shown(now.get(k, _ABSENT))})"
             for k in keys[:SHOWN_KEYS]]
    more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
    return [f"settings changed: {', '.join(shown)}{more}"]


def changed_inputs(before: dict, now: dict, work: Path) -> list[str]:
    paths = [p for p in now if before.get(p) != now[p]]
    paths += [p for p in before if p not in now]
    if not paths:
        return []
    shown = ", ".join(shown_path(p, work) for p in paths[:SHOWN_KEYS])
    more = f" and {len(paths) - SHOWN_KEYS} more" if len(paths) > SHOWN_KEYS else ""
    return [f"input changed: {shown}{more}"]


def shown_path(path: str, work: Path) -> str:
    """A path as a line shows it: relative to the work folder when inside it."""
    try:
        return str(Path(path).relative_to(work))
    except ValueError:
        return path


class _Absent:
    def __repr__(self) -> str:
        return "unset"


_ABSENT = _Absent()


def _shown(value) -> str:
    from kani_adapt.core.untrusted import visible

    text = repr(value) if value is _ABSENT else visible(json.dumps(value, ensure_ascii=False))
    return text if len(text) <= SHOWN_VALUE else text[:SHOWN_VALUE - 3] + "..."


def output_verdict(before: dict | None, after: dict) -> str:
    """How a stage's products compare with its last run's: first, identical or changed."""
    if not after:
        return ""
    if not before:
        return "first"
    return "identical" if before == after else "changed"
