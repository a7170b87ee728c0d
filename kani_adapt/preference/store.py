"""Rollouts and their scores on disk: one parquet table per stage, rows in the same order, so a
stage that is done is read back instead of run again, and re-scoring needs no re-sampling."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kani_adapt import tokens
from kani_adapt.core import atomic
from kani_adapt.core.errors import DataError
from kani_adapt.preference.prompts import Prompt
from kani_adapt.preference.reward import Score
from kani_adapt.preference.rollouts import Rollout


def write_rollouts(path: Path, rollouts: list[Rollout]) -> None:
    import pandas as pd

    rows = [{"group": r.group, "text": r.prompt.text, "kind": r.prompt.kind, "tag": r.prompt.tag,
             "split": r.split, "speaker": r.speaker,
             "speaker_emb": None if r.speaker_emb is None else np.asarray(r.speaker_emb, np.float32).tolist(),
             "ids": list(map(int, r.ids)), "expected": float(r.expected), "cap": int(r.cap),
             "codes": np.asarray(r.codes, np.int64).reshape(-1).tolist(), "truncated": bool(r.truncated)}
            for r in rollouts]
    atomic.write_file(path, lambda tmp: pd.DataFrame(rows).to_parquet(tmp, index=False))


def read_rollouts(path: Path) -> list[Rollout]:
    import pandas as pd

    if not Path(path).is_file():
        raise DataError(f"{path}: no rollouts; run the sample stage")
    out = []
    for row in pd.read_parquet(path).to_dict("records"):
        emb = row["speaker_emb"]
        out.append(Rollout(str(row["group"]), Prompt(str(row["text"]), str(row["kind"]), str(row["tag"])),
                           str(row["split"]), str(row["speaker"]),
                           None if emb is None else np.asarray(emb, np.float32),
                           [int(t) for t in row["ids"]], float(row["expected"]), int(row["cap"]),
                           np.asarray(row["codes"], np.int64).reshape(-1, tokens.TOKENS_PER_FRAME),
                           bool(row["truncated"])))
    return out


def write_scores(path: Path, scores: list[Score], rewards: list[float], failed: list[list[str]]) -> None:
    import pandas as pd

    rows = [{"transcript": s.transcript, "wer": s.wer, "cer": s.cer, "seconds": s.seconds,
             "expected": s.expected, "truncated": s.truncated, "similarity": s.similarity,
             "reward": r, "failed": ",".join(f)}
            for s, r, f in zip(scores, rewards, failed)]
    atomic.write_file(path, lambda tmp: pd.DataFrame(rows).to_parquet(tmp, index=False))


def read_scores(path: Path) -> tuple[list[Score], list[float], list[list[str]]]:
    import pandas as pd

    if not Path(path).is_file():
        raise DataError(f"{path}: no scores; run the score stage")
    frame = pd.read_parquet(path).to_dict("records")
    return ([Score(str(r["transcript"]), float(r["wer"]), float(r["cer"]), float(r["seconds"]),
                   float(r["expected"]), bool(r["truncated"]), float(r.get("similarity", float("nan"))))
             for r in frame],
            [float(r["reward"]) for r in frame],
            [[x for x in str(r["failed"]).split(",") if x] for r in frame])
