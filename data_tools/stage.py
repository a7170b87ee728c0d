"""Shared plumbing of a resumable stage: its folder, log, manifest, rejections and budget.

Layout of a work directory: ``<work>/<stage>/log.jsonl`` (per-unit completion records),
``<work>/<stage>/manifest.jsonl`` (accepted utterances), ``<work>/<stage>/rejected.jsonl`` and the
union of all stages' rejections in ``<work>/rejected.jsonl``. A stage whose settings changed since
its log was written starts over, so a resumed run never mixes two configurations.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from data_tools.records import (
    STAGES, LogEntry, StageLog, Utterance, read_jsonl, write_jsonl_atomic,
    write_text_atomic,
)
from kani_adapt.errors import DataError

PIPELINE_INPUTS = {  # which earlier stages can feed each stage, nearest first
    "segment": ("ingest",),
    "align": ("segment", "ingest"),
    "filter": ("align", "segment", "ingest"),
    "embed": ("filter",),
    "tokenize": ("filter",),
}


def stage_dir(work: Path, stage: str) -> Path:
    return Path(work) / stage


def manifest_path(work: Path, stage: str) -> Path:
    return stage_dir(work, stage) / "manifest.jsonl"


def input_manifest(work: Path, stage: str) -> Path:
    """The manifest a stage reads: the nearest earlier stage that has finished."""
    for earlier in PIPELINE_INPUTS[stage]:
        path = manifest_path(work, earlier)
        if path.exists():
            return path
    raise DataError(
        f"{stage}: no input in {work}: run `data-tools {PIPELINE_INPUTS[stage][-1]}` first"
    )


def settings_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def open_log(work: Path, stage: str, settings: dict, name: str = "log.jsonl") -> StageLog:
    """The stage's log; cleared first when the stage's settings changed since it was written."""
    folder = stage_dir(work, stage)
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "settings.json"
    key = settings_key(settings)
    if key_file.exists() and json.loads(key_file.read_text())["key"] != key:
        shutil.rmtree(folder)  # settings changed: earlier results would be wrong now
        folder.mkdir(parents=True)
    if not key_file.exists():
        write_text_atomic(key_file, json.dumps({"key": key, "settings": settings}, indent=1))
    return StageLog(folder / name)


def finish(work: Path, stage: str, accepted: list[Utterance], rejected: list[dict],
           n_inputs: int, max_rejected_fraction: float) -> list[Utterance]:
    """Write the stage's manifest and rejections; fail only past the rejected budget."""
    folder = stage_dir(work, stage)
    write_jsonl_atomic(folder / "manifest.jsonl", (u.to_dict() for u in accepted))
    write_jsonl_atomic(folder / "rejected.jsonl", rejected)
    rebuild_rejected(work)
    if n_inputs and len(rejected) / n_inputs > max_rejected_fraction:
        raise DataError(
            f"{stage}: rejected {len(rejected)} of {n_inputs} items, more than "
            f"max_rejected_fraction={max_rejected_fraction}; reasons are in "
            f"{Path(work) / 'rejected.jsonl'}"
        )
    return accepted


def rebuild_rejected(work: Path) -> None:
    rows = []
    for stage in STAGES:
        rows.extend(read_jsonl(stage_dir(work, stage) / "rejected.jsonl"))
    write_jsonl_atomic(Path(work) / "rejected.jsonl", rows)


def collect(entries: list[LogEntry]) -> tuple[list[Utterance], list[dict]]:
    accepted = [Utterance.from_dict(d) for e in entries for d in e.out]
    rejected = [r for e in entries for r in e.rejected]
    return accepted, rejected


def read_log(work: Path, stage: str, name: str = "log.jsonl") -> list[LogEntry]:
    return [LogEntry(**d) for d in read_jsonl(stage_dir(work, stage) / name)]

