"""Eval items from a kani-adapt dataset: held-out speakers, plus a base-language replay set.

A dataset row has text, tag, speaker, the recording's codes and speaker embeddings, but no
audio: the recording is its codes decoded by the codec, which is also the codec ceiling. The
held-out speakers are named (``dataset.speakers``) or read from a training run's
``data_stats.json`` (``dataset.from_run``), so the eval uses the speakers training never saw.
"""
from __future__ import annotations

import json
from pathlib import Path

from kani_adapt import dataset
from kani_adapt.core.errors import DataError
from kani_adapt.core.untrusted import visible
from kani_adapt.eval.config import DatasetSetConfig
from kani_adapt.eval.evalset import EvalItem


def run_stats(from_run: str) -> dict:
    """The training run's ``data_stats.json`` (who trained, who was held out, per tag)."""
    stats = Path(from_run) / "data_stats.json"
    try:
        data = json.loads(stats.read_text())
        data["val_speakers"] = list(data["val_speakers"])
        return data
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{stats}: cannot read val_speakers ({err}); name the speakers with "
                        "dataset.speakers=[...]") from err


def held_out_speakers(cfg: DatasetSetConfig) -> list[str]:
    """The speakers to evaluate: those named, else the run's held-out speakers (of every tag).
    A named speaker that the run trained on is refused: the eval measures unseen voices."""
    if cfg.speakers:
        trained = set(run_stats(cfg.from_run).get("trained_speakers", [])) if cfg.from_run else set()
        seen = sorted(trained.intersection(cfg.speakers))
        if seen:
            raise DataError(f"dataset.speakers names {', '.join(map(visible, seen[:5]))}, which "
                            f"{cfg.from_run}/data_stats.json says training trained on; evaluate "
                            "held-out speakers only (leave dataset.speakers empty to take the "
                            "run's)")
        return list(cfg.speakers)
    if cfg.from_run:
        return run_stats(cfg.from_run)["val_speakers"]
    raise DataError("a dataset eval set needs dataset.speakers=[...] or dataset.from_run=RUN_DIR "
                    "(the training run whose held-out speakers to evaluate)")


def _items(table, spec: str, speakers: list[str] | None, per_speaker: int, base: bool,
           limit_speakers: int = 0) -> list[EvalItem]:
    names = dataset.speakers(table)
    chosen = speakers if speakers is not None else sorted(set(names))[:limit_speakers]
    missing = sorted(set(chosen) - set(names))
    if missing:
        raise DataError(f"{spec}: no rows for speaker(s) {missing[:5]}")
    emb_column = dataset.voice_column(table)
    out = []
    for speaker in chosen:
        rows = [i for i, n in enumerate(names) if n == speaker][:per_speaker]
        for i in rows:
            row = table[i]
            prefix = "replay" if base else "held"
            out.append(EvalItem(id=f"{prefix}-{speaker}-{i}", text=dataset.text(row), speaker=speaker,
                                tag=_tag(row), reference_text=dataset.text(row), base=base,
                                codes=dataset.codes(row),
                                vector=dataset.speaker_embedding(row, emb_column)))
    return out


def _tag(row) -> str | None:
    """The tag as written (eval items keep its spelling), None when there is none."""
    value = row.get(dataset.TAG)
    return str(value) if value else None


def load_dataset_items(spec: str, cfg: DatasetSetConfig) -> list[EvalItem]:
    items = _items(dataset.read(spec), spec, held_out_speakers(cfg), cfg.per_speaker, base=False)
    if cfg.replay:
        items += _items(dataset.read(cfg.replay), cfg.replay, None, cfg.replay_per_speaker, base=True,
                        limit_speakers=cfg.replay_speakers)
    if not items:
        raise DataError(f"{spec}: no eval items from the held-out speakers")
    return items
