"""The tokenized dataset: the contract between the data tools and training, evaluation and recipes.

Its columns and their Hugging Face features, which are required, the folder it lives in
(:class:`DatasetLayout`), the one reader (:func:`read`) and the one writer
(:func:`write_tables`), and the accessors every reader uses (codes, durations, speaker
embeddings). No other module spells a column name (``tests/test_dataset_contract.py`` reads the
source to keep it so).

Columns, one row per clip: ``text`` (no tag prefix), ``tag`` (lower case), ``nano_layer_1..4``
(the codec's 4 codebooks, frames as written), ``encoded_len`` (frames), ``speaker_emb`` (128-d,
per clip), ``speaker_emb_mean`` (the speaker's mean), ``speaker``, ``duration`` (seconds),
``source`` (``<source>/<path>``), and the float columns a data stage declares (``cer``,
``dnsmos_ovrl``, ...), empty where not measured. Training needs only :data:`REQUIRED`.

The official pretraining code (kani-tts-2-pretrain) reads another spelling of the same rows,
one parquet folder per tag: the speaker column is the per-speaker mean (``grouped_sp_emb``, the
name of its example config), the per-clip vector rides along as ``clip_sp_emb``; see
:func:`official_row` and :func:`official_features`. Nothing heavy at import: ``datasets`` loads
inside the functions that need it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from kani_adapt import tokens
from kani_adapt.core.preflight import problem
from kani_adapt.core.errors import DataError, KaniAdaptError

TEXT, TAG, SPEAKER, DURATION, SOURCE = "text", "tag", "speaker", "duration", "source"
CODES = tuple(f"nano_layer_{i}" for i in range(1, tokens.TOKENS_PER_FRAME + 1))
ENCODED_LEN = "encoded_len"
# The reading to speak instead of the text frontend's, for rows no rule gets right ("" = none);
# the ``text`` column then holds it already (kani_adapt.text.frontend.Frontend.apply)
TEXT_OVERRIDE = "text_override"
SPEAKER_EMB, SPEAKER_EMB_MEAN = "speaker_emb", "speaker_emb_mean"
REQUIRED = (TEXT, *CODES, ENCODED_LEN, SPEAKER)  # what training reads from every row
OPTIONAL = (TAG, SPEAKER_EMB, SPEAKER_EMB_MEAN, DURATION, SOURCE, TEXT_OVERRIDE)  # the data tools write them too
COLUMNS = (TEXT, TAG, *CODES, ENCODED_LEN, SPEAKER_EMB, SPEAKER_EMB_MEAN, SPEAKER, DURATION, SOURCE,
           TEXT_OVERRIDE)
OFFICIAL_SPEAKER_EMB, OFFICIAL_CLIP_EMB = "grouped_sp_emb", "clip_sp_emb"


@dataclass(frozen=True)
class DatasetLayout:
    """The folder the data tools write (``<work>/dataset`` by default) and what is in it."""

    root: Path

    FOLDER = "dataset"  # inside the data tools' work folder

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def in_work(cls, work: str | Path) -> "DatasetLayout":
        return cls(Path(work) / cls.FOLDER)

    @classmethod
    def of_table(cls, hf: str | Path) -> "DatasetLayout":
        """The layout whose ``hf`` folder is ``hf`` (what training is pointed at)."""
        return cls(Path(hf).parent)

    @property
    def hf(self) -> Path:  # save_to_disk folder: what training, eval and recipes read
        return self.root / "hf"

    @property
    def parquet(self) -> Path:  # the same rows as parquet shards
        return self.root / "parquet"

    @property
    def official(self) -> Path:  # one parquet folder per tag + dataset_config.yaml
        return self.root / "official"

    @property
    def nemo_manifest(self) -> Path:  # the processed clips, for codec training and checks
        return self.root / "nemo_manifest.jsonl"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def sources(self) -> Path:  # what the inputs' cards say of them: name, licence (a list)
        return self.root / "sources.json"


def read_sources(hf: str | Path) -> list[dict]:
    """The licences and names of the packaged contributions a dataset was made from (its
    ``sources.json``; [] where it has none, or cannot be read): entries with ``source``,
    ``license`` and, where given, ``license_name``, ``license_link``, ``pretty_name``."""
    import json

    path = DatasetLayout.of_table(hf).sources
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    except (OSError, ValueError):
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def features(extra: Sequence[str] = ()):
    """The Hugging Face features of a dataset with the stage columns ``extra`` (floats)."""
    from datasets import Features, Sequence as Seq, Value

    ints, floats = Seq(Value("int32")), Seq(Value("float32"))
    return Features({
        TEXT: Value("string"), TAG: Value("string"), **{c: ints for c in CODES},
        ENCODED_LEN: Value("int32"), SPEAKER_EMB: floats, SPEAKER_EMB_MEAN: floats,
        SPEAKER: Value("string"), DURATION: Value("float64"), SOURCE: Value("string"),
        TEXT_OVERRIDE: Value("string"), **{c: Value("float64") for c in extra},
    })


def make_row(text: str, tag: str, codes: np.ndarray, speaker: str, speaker_emb, speaker_emb_mean,
             duration: float, source: str, extra: dict | None = None,
             text_override: str = "") -> dict:
    """One row; ``codes`` is (frames, 4), ``extra`` the stage columns' values (None: not measured)."""
    codes = np.asarray(codes)
    return {TEXT: text, TAG: tag, **{c: codes[:, i].astype(int).tolist() for i, c in enumerate(CODES)},
            ENCODED_LEN: int(len(codes)), SPEAKER_EMB: np.asarray(speaker_emb, np.float32).tolist(),
            SPEAKER_EMB_MEAN: np.asarray(speaker_emb_mean, np.float32).tolist(), SPEAKER: speaker,
            DURATION: float(duration), SOURCE: source, TEXT_OVERRIDE: text_override,
            **(extra or {})}


def official_features():
    from datasets import Features, Sequence as Seq, Value

    ints, floats = Seq(Value("int32")), Seq(Value("float32"))
    return Features({
        TEXT: Value("string"), **{c: ints for c in CODES}, ENCODED_LEN: Value("int32"),
        OFFICIAL_SPEAKER_EMB: floats, OFFICIAL_CLIP_EMB: floats, SPEAKER: Value("string"),
        DURATION: Value("float64"), SOURCE: Value("string"),
    })


def official_row(text: str, codes: np.ndarray, speaker: str, speaker_emb, speaker_emb_mean,
                 duration: float, source: str) -> dict:
    """A row of the official format; ``codes`` is (frames, 4), written as the codec produced it."""
    codes = np.asarray(codes)
    return {TEXT: text, **{c: codes[:, i].astype(int).tolist() for i, c in enumerate(CODES)},
            ENCODED_LEN: int(len(codes)),
            OFFICIAL_SPEAKER_EMB: np.asarray(speaker_emb_mean, np.float32).tolist(),
            OFFICIAL_CLIP_EMB: np.asarray(speaker_emb, np.float32).tolist(),
            SPEAKER: speaker, DURATION: float(duration), SOURCE: source}


def official_columns() -> dict:
    """The column names an entry of the official ``dataset_config.yaml`` maps (theirs: ours)."""
    return {"text_col_name": TEXT, **{c: c for c in CODES}, ENCODED_LEN: ENCODED_LEN,
            SPEAKER_EMB: OFFICIAL_SPEAKER_EMB}


def to_table(rows: list[dict], extra: Sequence[str] = (), official: bool = False):
    """A ``datasets.Dataset`` of rows with the contract's features."""
    from datasets import Dataset

    return Dataset.from_list(rows, features=official_features() if official else features(extra))


def write_tables(table, layout: DatasetLayout, shard_rows: int = 5000) -> None:
    """``layout.hf`` (save_to_disk) and ``layout.parquet`` shards; ``layout.root`` is a temporary
    folder the caller moves into place (:func:`kani_adapt.core.atomic.write_folder`)."""
    table.save_to_disk(str(layout.hf))
    layout.parquet.mkdir()
    n = max(1, -(-len(table) // shard_rows))
    for i in range(n):
        table.shard(n, i, contiguous=True).to_parquet(
            str(layout.parquet / f"train-{i:05d}-of-{n:05d}.parquet"))


def read(spec: str | Path):
    """A dataset from a save_to_disk folder (of a ``Dataset`` or a ``DatasetDict``'s train split),
    a parquet file or a folder of parquet files; every required column checked."""
    import datasets

    path = Path(spec)
    if path.is_dir() and (path / "dataset_dict.json").exists():
        table = datasets.load_from_disk(str(path))["train"]
    elif path.is_dir() and (path / "state.json").exists():
        table = datasets.load_from_disk(str(path))
    elif path.is_dir() and any(path.rglob("*.parquet")):
        files = sorted(str(p) for p in path.rglob("*.parquet"))
        table = datasets.load_dataset("parquet", data_files=files, split="train")
    elif path.is_file() and path.suffix == ".parquet":
        table = datasets.load_dataset("parquet", data_files=str(path), split="train")
    else:
        raise DataError(f"{spec}: not a saved Hugging Face dataset or parquet file/folder "
                        "(write one with `data-tools write`)")
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise DataError(f"{spec}: missing column(s) {', '.join(missing)}")
    return table


def codes(row: dict, limit: int | None = None) -> np.ndarray:
    """(frames, 4) int64 codes of a row, cut at its ``encoded_len``."""
    n = int(row[ENCODED_LEN]) if limit is None else limit
    return np.stack([np.asarray(row[c][:n], dtype=np.int64) for c in CODES], 1)


def duration(row: dict) -> float:
    """Seconds: the ``duration`` column, else the frames at the codec's rate."""
    if row.get(DURATION) is not None:
        return float(row[DURATION])
    return int(row[ENCODED_LEN]) / tokens.FRAMES_PER_SECOND


def text(row: dict) -> str:
    return str(row[TEXT])


def text_override(row: dict) -> str:
    """The row's own reading ("" when it has none, or the dataset predates the column)."""
    return str(row.get(TEXT_OVERRIDE) or "")


def tag(row: dict, column: str = TAG) -> str | None:
    """The row's tag, lower-cased (None when it has none)."""
    value = (row.get(column) or "").strip().lower()
    return value or None


def tags(table, column: str = TAG) -> list[str]:
    """The tag of every row, in row order, lower-cased ("" where a row has none, or the table
    has no such column)."""
    if column not in table.column_names:
        return [""] * len(table)
    return [str(v or "").strip().lower() for v in table[column]]


def speakers(table) -> list[str]:
    """The speaker of every row, in row order."""
    return [str(s) for s in table[SPEAKER]]


def speaker_embedding(row: dict, column: str = SPEAKER_EMB) -> np.ndarray | None:
    """A row's 128-d speaker vector from ``column`` (None when the row has none)."""
    value = row.get(column)
    return None if value is None else np.asarray(value, dtype=np.float32)


def voice_column(table) -> str:
    """The column that holds a speaker's voice: the per-speaker mean where written, else the
    per-clip vector."""
    return SPEAKER_EMB_MEAN if SPEAKER_EMB_MEAN in table.column_names else SPEAKER_EMB


def voice(table, speaker: str | None, where: str = "speaker") -> np.ndarray | None:
    """The mean embedding of ``speaker`` (default: the first row's), or None when the dataset
    has no mean embeddings; an unknown speaker is an error naming ``where`` and the speakers
    there are."""
    if SPEAKER_EMB_MEAN not in table.column_names:
        return None
    names = speakers(table)
    wanted = speaker or names[0]
    if wanted not in names:
        raise DataError(f"{where} {wanted!r} is not a speaker of the dataset; speakers: "
                        f"{', '.join(sorted(set(names))[:10])}")
    return speaker_embedding(table[names.index(wanted)], SPEAKER_EMB_MEAN)


def check_table(key: str, spec: str, columns: Sequence[str] = ()) -> list:
    """Preflight problems (:mod:`kani_adapt.core.preflight`) of a tokenized dataset: it opens,
    holds rows and has the columns training reads (and ``columns``)."""
    if not spec:
        return []
    if not Path(spec).exists():
        return [problem(f"{key}: {spec}: no such dataset folder or parquet file")]
    try:
        table = read(spec)
    except KaniAdaptError as err:
        return [problem(f"{key}: {' '.join(str(err).split())}")]
    except Exception as err:  # a damaged file: datasets/pyarrow say why
        return [problem(f"{key}: {spec} does not open ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:160]})")]
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        return [problem(f"{key}: {spec} lacks column(s) {', '.join(missing)}")]
    if len(table) == 0:
        return [problem(f"{key}: {spec} holds no rows")]
    return []
