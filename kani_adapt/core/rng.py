"""Every random number generator's state, saved in checkpoints and restored on resume.

One format for the generator and codec trainers: plain tensors, lists and a JSON string only,
so a checkpoint holding it still loads with ``torch.load(weights_only=True)``. :func:`restore`
also reads the older layouts (Python's state as a tuple, no CUDA state as ``None``).
"""
from __future__ import annotations

import json
import random

import numpy as np
import torch


def capture() -> dict:
    """torch (CPU and every CUDA device), NumPy's global and Python's ``random`` states."""
    name, keys, *rest = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), *rest],
        "python": json.dumps(random.getstate()),
    }


def restore(state: dict) -> None:
    """Put back what :func:`capture` saved."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    python = state["python"]
    version, internal, gauss = json.loads(python) if isinstance(python, str) else python
    random.setstate((version, tuple(internal), gauss))
