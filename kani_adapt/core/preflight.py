"""Preflight: what a command checks about the machine and the data before any work.

A check is a function ``check(target) -> list[Finding]`` (``target``: the command's typed config);
a command runs a list of them (:func:`run_checks`). A finding is a problem (the command refuses
to start: one line each, exit 2) or a note (what will be fetched, and from where; a stage that
stays off). ``kani-adapt check`` and ``data-tools check`` print :func:`verdict`; ``run``,
``train``, ``prepare``, ``generate`` and ``eval`` call :func:`refuse` first. Adding a check is
one function appended to a command's list (``data_tools/preflight.py: CHECKS``,
``kani_adapt/recipes/preflight.py: CHECKS``).

The helpers here check the things every command names: devices (:func:`device`), models by
local path or hub id (:func:`model`), codecs (:func:`codec`) and tokenized datasets
(tokenized datasets: :func:`kani_adapt.dataset.check_table`). Nothing is downloaded; torch is imported only to look at devices.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from kani_adapt.core import hub
from kani_adapt.core.errors import PreflightError


@dataclass(frozen=True)
class Finding:
    line: str
    problem: bool = True  # False: a note; the command still runs
    about: str = ""  # what it is about ("device:cuda"): keys wired to one value report it once


def problem(line: str, about: str = "") -> Finding:
    return Finding(line, True, about)


def note(line: str, about: str = "") -> Finding:
    return Finding(line, False, about)


Check = Callable[[Any], list[Finding]]


def run_checks(checks: Sequence[Check], target) -> list[Finding]:
    """Every finding of every check, in order; one about the same thing as an earlier one
    (keys wired to one value: every stage's device, the codec of several stages) is left out."""
    out: list[Finding] = []
    for check in checks:
        for f in check(target):
            if f not in out and not (f.about and any(g.about == f.about for g in out)):
                out.append(f)
    return out


def problems(findings: list[Finding]) -> list[str]:
    return [f.line for f in findings if f.problem]


def verdict(what: str, findings: list[Finding]) -> str:
    """A short verdict: the first line says ready or how many problems, then one line each."""
    bad = problems(findings)
    head = (f"{what}: ready" if not bad else
            f"{what}: {len(bad)} problem{'s' if len(bad) > 1 else ''}; nothing was run")
    return "\n".join([head] + [f"  problem: {line}" for line in bad] +
                     [f"  note: {f.line}" for f in findings if not f.problem]) + "\n"


def refuse(findings: list[Finding]) -> None:
    """Raise :class:`PreflightError` (one line per problem, exit 2) when there is a problem."""
    bad = problems(findings)
    if bad:
        raise PreflightError(bad)


# --- devices ---------------------------------------------------------------------------------

def device(key: str, value: str) -> list[Finding]:
    """A problem when this torch build cannot use ``value`` (``auto`` and ``cpu`` always can)."""
    if value in ("auto", "cpu") or not value:
        return []
    import torch

    build = torch.__version__
    if value.startswith("cuda"):
        if not torch.cuda.is_available():
            return [problem(f"{key}: {value}, but this torch build ({build}) sees no CUDA GPU; "
                            f"set {key}=cpu (or auto), or install a CUDA build of torch",
                            f"device:{value}")]
        index = int(value.split(":")[1]) if ":" in value else 0
        if index >= torch.cuda.device_count():
            return [problem(f"{key}: {value}, but this machine has {torch.cuda.device_count()} "
                            f"CUDA GPU(s) (cuda:0..cuda:{torch.cuda.device_count() - 1})",
                            f"device:{value}")]
    elif value == "mps" and not torch.backends.mps.is_available():
        return [problem(f"{key}: mps, but this torch build ({build}) has no Apple GPU; set "
                        f"{key}=cpu (or auto)", "device:mps")]
    return []


# --- models ----------------------------------------------------------------------------------

def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")


def hub_model(key: str, ref: str, cached: bool, what: str) -> list[Finding]:
    """A hub id: usable from the cache, fetched from the hub, or refused when offline."""
    if cached:
        return []
    if offline():
        return [problem(f"{key}: {what} {ref} is not on this machine and HF_HUB_OFFLINE is set; "
                        f"fetch it where the hub is reachable (`hf download {ref}`) or give a "
                        "local path", f"model:{ref}")]
    return [note(f"{key}: {what} {ref} will be fetched from https://huggingface.co/{ref}",
                 f"model:{ref}")]


def model(key: str, ref: str, what: str = "model", required: tuple[str, ...] = ("config.json",),
          sizes: Sequence[str] = ()) -> list[Finding]:
    """A model folder named by a local path, a hub id or (``sizes``) a size built at random."""
    if not ref or ref in sizes:
        return []
    path = Path(ref).expanduser()
    if path.exists():
        missing = [f for f in required if not (path / f).is_file()]
        if missing:
            return [problem(f"{key}: {ref} is not a {what} folder (it lacks "
                            f"{', '.join(missing)})")]
        return []
    if hub.is_hub_id(ref):
        return hub_model(key, ref, hub.on_machine(ref), what)
    return [problem(f"{key}: {ref}: no such {what} folder, and not a hub id "
                    f"(owner/name){_sizes(sizes)}", f"model:{ref}")]


def codec(key: str, ref: str, sizes: Sequence[str] = ("tiny", "0.6kbps")) -> list[Finding]:
    """A codec: a size name (random weights; ``kani_adapt.codec.nanocodec.SIZES``), a ``.nemo``
    file or a hub id."""
    SIZES = tuple(sizes)
    if not ref or ref in SIZES:
        return []
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_file() or path.suffix != ".nemo":
            return [problem(f"{key}: {ref} is not a .nemo codec file; give a .nemo file, a hub "
                            f"id or a size ({', '.join(SIZES)})", f"model:{ref}")]
        return []
    if hub.is_hub_id(ref):
        return hub_model(key, ref, hub.cached(ref, ".nemo"), "codec")
    return [problem(f"{key}: {ref}: no such .nemo file, and not a hub id{_sizes(tuple(SIZES))}",
                    f"model:{ref}")]


def _sizes(sizes) -> str:
    return f" or a size ({', '.join(sizes)})" if sizes else ""
