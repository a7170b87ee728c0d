"""Records passed between stages, and the resumable per-stage log they travel in.

Every stage reads the previous stage's ``manifest.jsonl`` and appends one line per finished unit
of work (one input item, or one batch) to its own log, with the result of each input by id. A line is written in a single ``write`` and
flushed, so after an interruption a unit is either fully recorded or not at all (a torn last line
is cut off on reopen); re-running skips recorded inputs. The stage's manifest and the shared
``rejected.jsonl`` are derived from the logs and replaced atomically (temp file + rename).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator


@dataclass
class Utterance:
    id: str  # says where it came from: "<source>/<relative path>[#seg000]" (data_tools/inputs/ids.py)
    audio: str  # path of the processed mono clip, relative to the work directory
    text: str
    speaker: str
    tag: str = ""  # lower-cased language/accent tag, "" when none
    duration: float = 0.0  # seconds
    source: str = ""  # original file (and line, for table layouts)
    orig_sample_rate: int = 0
    channels: int = 1
    sha256: str = ""  # of the original file's bytes: exact duplicates
    start: float = 0.0  # offset of this clip inside the original recording, seconds
    long: bool = False  # longer than segment.max_seconds: only alignment can split it
    text_override: str = ""  # the reading to speak instead of the frontend's ("" = none)

    @classmethod
    def from_dict(cls, data: dict) -> "Utterance":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Rejection:
    id: str
    stage: str
    reason: str  # short machine-readable reason, e.g. "nan_samples"
    detail: str = ""  # human-readable context (values, thresholds, file names)
    source: str = ""


@dataclass
class LogEntry:
    """One finished unit of work (one item, or one batch): what became of each input, by id."""

    results: dict[str, dict]  # input id -> {"out": [utterance dicts], "rejected": record|None,
    #                           "extra": stage data}
    batch: dict = field(default_factory=dict)  # data of the whole unit (tokenize: its file)

    @property
    def inputs(self) -> list[str]:
        return list(self.results)


def _repair_tail(path: Path) -> None:
    """Cut a torn last line left by an interrupted append."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as fh:  # only the tail is read: logs can be large
        fh.seek(max(0, path.stat().st_size - 1))
        if fh.read(1) == b"\n":
            return
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    with open(path, "r+b") as fh:
        fh.truncate(len(keep))


def read_jsonl(path: Path) -> Iterator[dict]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.endswith("\n") and line.strip():
                yield json.loads(line)


class StageLog:
    """Append-only log of one stage (or one shard of it)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _repair_tail(self.path)

    def append(self, entry: LogEntry) -> None:
        line = json.dumps({"results": entry.results, "batch": entry.batch},
                          ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def read_results(paths: Iterable[Path]) -> dict[str, tuple[dict, dict]]:
    """{input id: (its result, its unit's batch data)} over the logs of a stage, first record
    wins: a log holding an item twice (two writers, an older version) is repaired on read."""
    out: dict[str, tuple[dict, dict]] = {}
    for path in paths:
        for row in read_jsonl(path):
            if "results" not in row:
                continue  # a line from an older log format: its item is redone
            for utt_id, result in row["results"].items():
                out.setdefault(utt_id, (result, row.get("batch", {})))
    return out


def read_utterances(path: Path) -> list[Utterance]:
    """The utterances of a stage's ``manifest.jsonl`` (our records, one per line); not a NeMo
    audio manifest (:func:`kani_adapt.codec.manifest.read_nemo_manifest`)."""
    return [Utterance.from_dict(d) for d in read_jsonl(Path(path))]


read_manifest = read_utterances  # the name the stages use


def rejection(utt_id: str, stage: str, reason: str, detail: str = "", source: str = "") -> dict:
    return dataclasses.asdict(Rejection(utt_id, stage, reason, detail, source))


def reject_utt(utt: Utterance, stage: str, reason: str, detail: str = "") -> dict:
    return rejection(utt.id, stage, reason, detail, utt.source)


# The work folder: <work>/<stage>/ holds a stage's settings, logs, manifest and rejections.
def stage_dir(work: Path, stage: str) -> Path:
    return Path(work) / stage


def manifest_path(work: Path, stage: str) -> Path:
    return stage_dir(work, stage) / "manifest.jsonl"


def log_name(stage, shard: tuple[int, int]) -> str:
    """The log a stage's shard appends to (``stage.model``: one per shard)."""
    return f"log-{shard[0]:05d}-of-{shard[1]:05d}.jsonl" if stage.model else "log.jsonl"


def read_stage_results(work: Path, stage: str) -> dict[str, dict]:
    """{input id: result} over every log (every shard) of a stage."""
    logs = sorted(stage_dir(work, stage).glob("log*.jsonl"))
    return {k: r for k, (r, _) in read_results(logs).items()}
