"""A pairs file: preference pairs for ``objective: dpo``, each side with its reference
log-likelihood, so that training holds one model.

A folder with ``pairs.parquet`` (one row per pair) and ``pairs.json`` (how the pairs were made:
the prompt layout and text frontend of the policy that sampled them, the likelihood's settings,
the counts). ``kani-adapt prefer`` writes it (kani_adapt/preference/pairs.py); the ``dpo``
objective reads it and refuses one whose layout or stop floor differ from the run's: the
reference log-probabilities would then belong to another likelihood.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kani_adapt import tokens
from kani_adapt.core.errors import DataError

TABLE = "pairs.parquet"
META = "pairs.json"
LIKELIHOOD = "kani-adapt trajectory v1: codebook terms + end-of-speech terms, per frame"


@dataclass
class Side:
    codes: np.ndarray  # (frames, 4)
    truncated: bool  # stopped by the frame cap
    ref: float  # reference log-likelihood, per frame (kani_adapt.training.trajectory)
    reward: float = float("nan")


@dataclass
class Pair:
    group: str  # text x voice group it was drawn from
    prompt: list[int]  # laid out as generation lays it out, ending with start of speech
    chosen: Side
    rejected: Side
    text: str = ""
    tag: str = ""
    kind: str = ""  # the prompt's kind (short, number, long, ...)
    speaker: str = ""  # the voice's name
    speaker_emb: np.ndarray | None = None  # 128 floats; None: unconditioned
    weight: float = 1.0
    source: str = "auto"  # auto (rewards) or human (listeners)


@dataclass
class Meta:
    layout: dict  # tokens.TextLayout.identity() of the policy
    frontend: dict  # the policy's text frontend identity
    stop_floor: float
    policy: str = ""
    likelihood: str = LIKELIHOOD
    counts: dict = field(default_factory=dict)

    def text_layout(self) -> tokens.TextLayout:
        return tokens.TextLayout.from_identity(self.layout)


def write(folder: Path, pairs: list[Pair], meta: Meta) -> Path:
    import pandas as pd

    from kani_adapt.core import atomic

    folder = Path(folder)
    rows = [{"group": p.group, "prompt": list(map(int, p.prompt)), "text": p.text, "tag": p.tag,
             "kind": p.kind, "speaker": p.speaker,
             "speaker_emb": None if p.speaker_emb is None else np.asarray(p.speaker_emb, np.float32).tolist(),
             "weight": float(p.weight), "source": p.source,
             **{f"{name}_{key}": value for name, side in (("chosen", p.chosen), ("rejected", p.rejected))
                for key, value in (("codes", np.asarray(side.codes, np.int64).reshape(-1).tolist()),
                                   ("truncated", bool(side.truncated)), ("ref", float(side.ref)),
                                   ("reward", float(side.reward)))}}
            for p in pairs]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    atomic.write_file(folder / TABLE, lambda tmp: frame.to_parquet(tmp, index=False))
    atomic.write_json(folder / META, {"layout": meta.layout, "frontend": meta.frontend,
                                      "stop_floor": meta.stop_floor, "policy": meta.policy,
                                      "likelihood": meta.likelihood, "counts": meta.counts})
    return folder


COLUMNS = ["group", "prompt", "text", "tag", "kind", "speaker", "speaker_emb", "weight", "source",
           *(f"{side}_{key}" for side in ("chosen", "rejected")
             for key in ("codes", "truncated", "ref", "reward"))]


def read_meta(folder: Path) -> Meta:
    path = Path(folder) / META
    if not path.is_file():
        raise DataError(f"{folder}: no {META}; is it a pairs folder (kani-adapt prefer writes one)?")
    from kani_adapt.core.model_files import read_json_object

    data = read_json_object(path)
    try:
        return Meta(layout=dict(data["layout"]), frontend=dict(data["frontend"]),
                    stop_floor=float(data["stop_floor"]), policy=str(data.get("policy", "")),
                    likelihood=str(data.get("likelihood", "")), counts=dict(data.get("counts", {})))
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: not a pairs description ({err})") from err


def read(folder: Path) -> tuple[list[Pair], Meta]:
    import pandas as pd

    meta = read_meta(folder)
    path = Path(folder) / TABLE
    if not path.is_file():
        raise DataError(f"{folder}: no {TABLE}")
    frame = pd.read_parquet(path)
    missing = sorted(set(COLUMNS) - set(frame.columns))
    if missing:
        raise DataError(f"{path}: missing columns {missing}")
    if meta.likelihood != LIKELIHOOD:
        raise DataError(f"{folder}: its reference log-probabilities are of {meta.likelihood!r}, "
                        f"this install computes {LIKELIHOOD!r}; build the pairs again")
    return [_pair(row, path, i) for i, row in enumerate(frame.to_dict("records"))], meta


def _side(row: dict, name: str, path: Path, i: int) -> Side:
    flat = np.asarray(row[f"{name}_codes"], dtype=np.int64)
    if flat.size % tokens.TOKENS_PER_FRAME or (flat.size and (flat.min() < 0 or flat.max() >= tokens.CODEBOOK_SIZE)):
        raise DataError(f"{path} row {i}: {name} codes are not whole frames of codes 0..{tokens.CODEBOOK_SIZE - 1}")
    ref = float(row[f"{name}_ref"])
    if not np.isfinite(ref):
        raise DataError(f"{path} row {i}: {name} reference log-probability is {ref}")
    return Side(flat.reshape(-1, tokens.TOKENS_PER_FRAME), bool(row[f"{name}_truncated"]), ref,
                float(row[f"{name}_reward"]))


def _pair(row: dict, path: Path, i: int) -> Pair:
    prompt = [int(t) for t in row["prompt"]]
    if prompt[-1:] != [tokens.START_OF_SPEECH]:
        raise DataError(f"{path} row {i}: its prompt does not end with start of speech")
    emb = row["speaker_emb"]
    return Pair(group=str(row["group"]), prompt=prompt, chosen=_side(row, "chosen", path, i),
                rejected=_side(row, "rejected", path, i), text=str(row["text"]), tag=str(row["tag"]),
                kind=str(row["kind"]), speaker=str(row["speaker"]),
                speaker_emb=None if emb is None else np.asarray(emb, dtype=np.float32),
                weight=float(row["weight"]), source=str(row["source"]))
