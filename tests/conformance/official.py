"""The official runtime's modules (kani-tts-2 0.0.5, installed --no-deps for tests only).

Loaded file by file: the package's ``__init__`` imports NeMo and the whole inference stack,
while ``model.py`` and ``speaker_embedder.py`` need only torch and transformers.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _package_dir() -> Path:
    spec = importlib.util.find_spec("kani_tts")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the official runtime is missing: pip install --no-deps "
                           "kani-tts-2==0.0.5 (scripts/bootstrap.sh does)")
    return Path(list(spec.submodule_search_locations)[0])


def load(module: str):
    """``load("model")`` or ``load("speaker_embedder")``: the official module object."""
    name = f"official_kani_tts_{module}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _package_dir() / f"{module}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]
