"""One meaning of ``device`` in every schema and command: ``auto``, ``cpu``, ``cuda``, ``cuda:N``
or ``mps``.

``auto`` is the GPU this process should use when there is one, else the CPU. Under torchrun or
srun several processes share a node: each takes ``cuda:<local rank>``, so ``--shard I/N`` runs of
a data stage started that way spread over the node's GPUs without naming them. Training hands
the same value to Lightning (:func:`for_lightning`). Nothing here imports torch until a device
is resolved.
"""
from __future__ import annotations

import argparse
import os
import re
from typing import Annotated

CHOICES = "auto, cpu, cuda, cuda:N or mps"
_VALID = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")
_LOCAL_RANK_VARS = ("LOCAL_RANK", "SLURM_LOCALID")  # torchrun, srun


def problem(value: str) -> str | None:
    """Why ``value`` is not a device, or None when it is one."""
    if _VALID.match(value):
        return None
    hint = " (a GPU is 'cuda')" if value.lower() in ("gpu", "cuda:") else ""
    return f"{value!r} is not a device; use {CHOICES}{hint}"


def check(value: str) -> str:
    """``value`` when it is a device (the ``type=`` of every ``--device`` option); otherwise an
    error that argparse prints as one usage line naming the choices."""
    why = problem(value)
    if why:
        raise argparse.ArgumentTypeError(why)
    return value


# The type of every ``device`` field: the config loader runs ``problem`` on the value.
Device = Annotated[str, problem]


def local_rank() -> int | None:
    for name in _LOCAL_RANK_VARS:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def resolve(device: str = "auto") -> str:
    """A torch device string: ``auto`` becomes ``cuda`` / ``cuda:<local rank>``, else ``mps``
    on Apple silicon, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    if not torch.cuda.is_available():
        return "mps" if torch.backends.mps.is_available() else "cpu"
    rank = local_rank()
    return "cuda" if rank is None else f"cuda:{rank % torch.cuda.device_count()}"


def for_lightning(device: str) -> tuple[str, list[int] | None]:
    """(Lightning accelerator, GPU indices) for a device; indices None: the configured count."""
    if device.startswith("cuda"):
        return "gpu", [int(device.split(":")[1])] if ":" in device else None
    return device, None
