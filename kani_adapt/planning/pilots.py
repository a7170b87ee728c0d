"""One pilot: the recipe's own training on one subset, its merged export, the recipe's eval on the
held-out speakers and the held-out loss; and the base, evaluated once the same way.

A pilot runs wherever it is handed (this process, a process per GPU, a Ray task): everything
it needs is in its :class:`Pilot`, everything it leaves is in its folder, and its record
(``pilot.json``) says what it measured or why it failed. A pilot whose record holds its key
(a hash of everything its figures depend on) is done and skipped; an interrupted one resumes
(training resumes from its own checkpoints); one whose key changed starts over.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
import traceback
from pathlib import Path

from kani_adapt.core import atomic
from kani_adapt.planning import metrics

RECORD, KEY = "pilot.json", "key.txt"
log = logging.getLogger("kani_adapt.progress")


@dataclasses.dataclass
class Pilot:
    name: str
    axis: str
    fraction: float
    hours: float
    voices: int
    clips: int
    folder: str
    source: str  # the prepared dataset: the eval's items and the held-out rows come from it
    held_out: list[str]
    heldout_rows: int
    train: object  # TrainConfig: the recipe's, on this subset (the base: how its rows are laid out)
    eval: object  # EvalConfig: the recipe's, on the held-out speakers
    checkpoint: str = ""  # the base: what is evaluated, untrained
    export_dtype: str = "bf16"

    @property
    def key(self) -> str:
        from kani_adapt.config.load import to_dict

        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(train=to_dict(self.train), eval=to_dict(self.eval))
        text = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_record(pilot: Pilot) -> dict:
    path = Path(pilot.folder) / RECORD
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def is_done(pilot: Pilot) -> bool:
    record = read_record(pilot)
    return record.get("status") == "done" and record.get("key") == pilot.key


def run_pilot(pilot: Pilot, device: str | None = None) -> dict:
    """Train, export, evaluate and measure ``pilot`` (on ``device``: the recipe's when None);
    its record. A failure is recorded with its reason (and its traceback in error.txt), not
    raised: the other pilots go on."""
    if is_done(pilot):
        return read_record(pilot)
    folder = Path(pilot.folder)
    _start(folder, pilot.key)
    begun = time.time()
    try:
        record = _measure(pilot, device)
    except Exception as err:  # noqa: BLE001 - reported with its reason; a stop signal is not caught
        from kani_adapt.core.cli_kit import one_line

        atomic.write_text(folder / "error.txt", traceback.format_exc())
        reason = one_line(err) or f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        log.warning("pilot %s failed: %s", pilot.name, reason)
        record = {"status": "failed", "reason": reason}
    record.update(name=pilot.name, key=pilot.key, seconds=round(time.time() - begun, 1))
    atomic.write_json(folder / RECORD, record)
    return record


def _start(folder: Path, key: str) -> None:
    """Clear what another key left (a pilot whose subset or settings changed starts over)."""
    marker = folder / KEY
    if marker.is_file() and marker.read_text().strip() != key:
        for name in ("run", "merged", "eval", "base", RECORD, "error.txt"):
            path = folder / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    atomic.write_text(marker, key + "\n")


def on_device(pilot: Pilot, device: str | None) -> tuple[object, object]:
    """The pilot's training and eval configs, moved to ``device`` (one GPU) when given."""
    train, evaluation = pilot.train, pilot.eval
    if device is None:
        return train, evaluation
    train = dataclasses.replace(train, trainer=dataclasses.replace(
        train.trainer, device=device, gpus_per_node=1, num_nodes=1, strategy="auto"))
    return train, dataclasses.replace(evaluation, device=device)


def _measure(pilot: Pilot, device: str | None) -> dict:
    from kani_adapt.core.devices import resolve
    from kani_adapt.eval.dataset_set import load_dataset_items
    from kani_adapt.eval.evaluate import run_eval
    from kani_adapt.planning import heldout
    from kani_adapt.recipes.results import machine

    folder = Path(pilot.folder)
    train, evaluation = on_device(pilot, device)
    record: dict = {"machine": machine()}
    checkpoint = pilot.checkpoint
    if not checkpoint:
        record.update(_train(train, folder, pilot.export_dtype))
        checkpoint = record["checkpoint"]
    start = time.time()
    items = load_dataset_items(pilot.source, evaluation.dataset)
    result = run_eval(checkpoint, items, evaluation, folder / "eval")
    adapted = next(iter(result["checkpoints"]))
    sums = metrics.speaker_sums(folder / "eval", adapted)
    sums[metrics.HELDOUT] = heldout.speaker_losses(checkpoint, train, pilot.source,
                                                   pilot.held_out, pilot.heldout_rows,
                                                   resolve(evaluation.device))
    record.update(status="done", eval_seconds=round(time.time() - start, 1), sums=sums,
                  eval=str(folder / "eval"))
    if pilot.checkpoint:  # the base's eval also scored the recordings: the human anchor
        from kani_adapt.eval.run import RECORDINGS_ROW

        record["recordings"] = metrics.speaker_sums(folder / "eval", RECORDINGS_ROW)
    return record


def _train(train, folder: Path, dtype: str) -> dict:
    """The recipe's training on the subset, then its merged export; wall time and steps of
    this call (``resumed``: it went on from an earlier call's checkpoint)."""
    from kani_adapt.training.export import export_run
    from kani_adapt.training.fit import train as fit

    resumed = any((Path(train.run_dir) / "checkpoints").glob("*.ckpt"))
    start = time.time()
    summary = fit(train)
    seconds = time.time() - start
    merged = folder / "merged"
    if merged.exists():
        shutil.rmtree(merged)
    export_run(Path(train.run_dir), merged, merge=True, dtype=dtype)
    return {"steps": summary["steps"], "train_seconds": round(seconds, 2), "resumed": resumed,
            "checkpoint": str(merged)}
