"""Eval items from a kani-adapt dataset: held-out speakers, plus a base-language replay set.

A dataset row has text, tag, speaker, the recording's codes and speaker embeddings, but no
audio: the recording is its codes decoded by the codec, which is also the codec ceiling. The
held-out speakers are named (``dataset.speakers``) or read from a training run's
``data_stats.json`` (``dataset.from_run``), so the eval uses the speakers training never saw.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kani_adapt.errors import DataError
from kani_adapt.eval.config import DatasetSetConfig
from kani_adapt.eval.evalset import EvalItem

CODE_COLUMNS = [f"nano_layer_{i}" for i in range(1, 5)]


def held_out_speakers(cfg: DatasetSetConfig) -> list[str]:
    if cfg.speakers:
        return list(cfg.speakers)
    if cfg.from_run:
        stats = Path(cfg.from_run) / "data_stats.json"
        try:
            return list(json.loads(stats.read_text())["val_speakers"])
        except (OSError, ValueError, KeyError) as err:
            raise DataError(f"{stats}: cannot read val_speakers ({err}); name the speakers with "
                            "dataset.speakers=[...]") from err
    raise DataError("a dataset eval set needs dataset.speakers=[...] or dataset.from_run=RUN_DIR "
                    "(the training run whose held-out speakers to evaluate)")


def _items(table, spec: str, speakers: list[str] | None, per_speaker: int, base: bool,
           limit_speakers: int = 0) -> list[EvalItem]:
    names = [str(s) for s in table["speaker"]]
    chosen = speakers if speakers is not None else sorted(set(names))[:limit_speakers]
    missing = sorted(set(chosen) - set(names))
    if missing:
        raise DataError(f"{spec}: no rows for speaker(s) {missing[:5]}")
    emb_column = "speaker_emb_mean" if "speaker_emb_mean" in table.column_names else "speaker_emb"
    out = []
    for speaker in chosen:
        rows = [i for i, n in enumerate(names) if n == speaker][:per_speaker]
        for i in rows:
            row = table[i]
            n = int(row["encoded_len"])
            codes = np.stack([np.asarray(row[c][:n], dtype=np.int64) for c in CODE_COLUMNS], 1)
            vector = np.asarray(row[emb_column], dtype=np.float32) if row.get(emb_column) is not None else None
            prefix = "replay" if base else "held"
            out.append(EvalItem(id=f"{prefix}-{speaker}-{i}", text=str(row["text"]), speaker=speaker,
                                tag=str(row["tag"]) if row.get("tag") else None,
                                reference_text=str(row["text"]), base=base, codes=codes, vector=vector))
    return out


def load_dataset_items(spec: str, cfg: DatasetSetConfig) -> list[EvalItem]:
    from kani_adapt.training.data import load_table

    items = _items(load_table(spec), spec, held_out_speakers(cfg), cfg.per_speaker, base=False)
    if cfg.replay:
        items += _items(load_table(cfg.replay), cfg.replay, None, cfg.replay_per_speaker, base=True,
                        limit_speakers=cfg.replay_speakers)
    if not items:
        raise DataError(f"{spec}: no eval items from the held-out speakers")
    return items
