"""Things built once per machine and kept: the tiny models that tests, the demo and smoke runs use.

A build is named by everything that decides its result (a recipe version, a seed, the versions of
espeak-ng and torch): the same name is the same file, so one build serves every later process.
Files live under ``$KANI_ADAPT_CACHE`` (default ``$XDG_CACHE_HOME/kani-adapt`` or
``~/.cache/kani-adapt``), never in a checkout. Concurrent processes wait for one builder (a file
lock) instead of building twice; a build is written to a temporary name and renamed.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable

from kani_adapt.core import atomic

log = logging.getLogger("kani_adapt.core.built")


def cache_dir() -> Path:
    root = os.environ.get("KANI_ADAPT_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kani-adapt"


def key(**parts) -> str:
    """A short stable name for a build's inputs."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cached(name: str, parts: dict, build: Callable[[Path], None], what: str) -> Path:
    """The path of build ``name`` for ``parts``; ``build(tmp_path)`` writes it when it is missing.

    ``name`` ends with the file's suffix (``tiny-codec.nemo``) or names a folder (no suffix).
    """
    stem, dot, suffix = name.partition(".")
    target = cache_dir() / f"{stem}-{key(**parts)}{dot}{suffix}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now
        if not target.exists():
            log.info("building %s (once on this machine; kept in %s)", what, target.parent)
            writer = atomic.write_file if suffix else atomic.write_folder
            writer(target, build)
    return target
