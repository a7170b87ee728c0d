"""What each generated clip of an eval was made of: its codes, whether the frame cap stopped
it, and the speaker embedding it was spoken with (``codes.parquet`` in the eval folder, one row
per checkpoint x item x sample, beside utterances.parquet).

The wavs are the codes decoded; decoding and encoding again would not give the same codes back,
so whatever learns from an eval's clips (listeners' preferences as DPO pairs,
kani_adapt/preference/human.py) reads the codes from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kani_adapt import tokens
from kani_adapt.core.errors import DataError

FILE = "codes.parquet"


@dataclass
class Spoken:
    checkpoint: str
    item: str
    sample: int
    codes: np.ndarray  # (frames, 4)
    truncated: bool  # stopped by the frame cap, not by end of speech
    speaker_emb: np.ndarray | None  # the voice it was given (None: unconditioned)

    def key(self) -> tuple[str, str, int]:
        return self.checkpoint, self.item, self.sample


def write(folder: Path, spoken: list[Spoken]) -> Path:
    import pandas as pd

    from kani_adapt.core.atomic import write_file

    rows = [{"checkpoint": s.checkpoint, "item": s.item, "sample": int(s.sample),
             "frames": int(len(s.codes)), "codes": np.asarray(s.codes, np.int64).reshape(-1).tolist(),
             "truncated": bool(s.truncated),
             "speaker_emb": None if s.speaker_emb is None else np.asarray(s.speaker_emb, np.float32).tolist()}
            for s in spoken]
    columns = ["checkpoint", "item", "sample", "frames", "codes", "truncated", "speaker_emb"]
    path = Path(folder) / FILE
    write_file(path, lambda tmp: pd.DataFrame(rows, columns=columns).to_parquet(tmp, index=False))
    return path


def read(folder: Path) -> dict[tuple[str, str, int], Spoken]:
    """Every row of an eval folder's codes file by (checkpoint, item, sample); a DataError
    naming the folder when there is none (an eval written before the file existed)."""
    import pandas as pd

    path = Path(folder) / FILE
    if not path.is_file():
        raise DataError(f"{folder}: no {FILE} (the generated codes); evaluate again with this "
                        "version of kani-adapt (`kani-adapt eval ... --out FOLDER`)")
    out = {}
    for row in pd.read_parquet(path).to_dict("records"):
        codes = np.asarray(row["codes"], np.int64)
        if codes.size != int(row["frames"]) * tokens.TOKENS_PER_FRAME:
            raise DataError(f"{path}: row {row['checkpoint']}/{row['item']} holds {codes.size} codes "
                            f"for {row['frames']} frames; the file is damaged, evaluate again")
        emb = row["speaker_emb"]
        s = Spoken(str(row["checkpoint"]), str(row["item"]), int(row["sample"]),
                   codes.reshape(-1, tokens.TOKENS_PER_FRAME), bool(row["truncated"]),
                   None if emb is None else np.asarray(emb, np.float32))
        out[s.key()] = s
    return out
