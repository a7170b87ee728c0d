"""Folders written whole or not at all: a crash never leaves a half-written export behind."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable


def write_folder(out: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a fresh folder beside ``out``, then replace ``out`` with it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out
