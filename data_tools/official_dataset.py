"""The dataset as the official pretraining code (kani-tts-2-pretrain) reads it.

Its ``prepare_dataset.py`` loads every entry of ``configs/dataset_config.yaml`` with
``datasets.load_dataset(reponame, name, split=split)`` (a ``save_to_disk`` folder is refused;
a local folder of parquet files works), renames the columns the entry names, and prefixes the
text with the entry's single ``language_tag``: there is no tag column. So each tag gets its own
parquet folder, and ``dataset_config.yaml`` lists them with their tags.

The frames are written as the codec produced them: the official prep drops repeated frames
itself and filters on ``encoded_len / 12.5`` seconds, which must be the real length.
The speaker column is the per-speaker mean (``grouped_sp_emb``, the name of the official
example config); the per-clip vector is kept as ``clip_sp_emb``.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

CONFIG = "dataset_config.yaml"
UNTAGGED = "untagged"
MAX_DURATION_SEC = 40  # the official example config's filter (clips longer were not trained)


def folder_name(tag: str | None) -> str:
    """A file-system-safe folder per tag (tags are lower-cased, as the official trainer does)."""
    if not tag:
        return UNTAGGED
    return re.sub(r"[^a-z0-9_.-]+", "_", tag.strip().lower()) or UNTAGGED


def rows_by_tag(utts, codes: dict, embs: dict, means: dict) -> dict[str | None, list[dict]]:
    """Rows grouped by lower-cased tag (None: untagged), frames untouched."""
    groups: dict[str | None, list[dict]] = {}
    for u in utts:
        frames = np.asarray(codes[u.id])  # (4, frames)
        row = {"text": u.text, "encoded_len": int(frames.shape[1]),
               "grouped_sp_emb": np.asarray(means[u.speaker], np.float32).tolist(),
               "clip_sp_emb": np.asarray(embs[u.id], np.float32).tolist(),
               "speaker": u.speaker, "duration": float(u.duration), "source": u.id}
        row |= {f"nano_layer_{c + 1}": frames[c].astype(int).tolist() for c in range(4)}
        tag = (u.tag or "").strip().lower() or None
        groups.setdefault(tag, []).append(row)
    return groups


def features():
    from datasets import Features, Sequence, Value

    ints = Sequence(Value("int32"))
    return Features({
        "text": Value("string"), **{f"nano_layer_{c}": ints for c in range(1, 5)},
        "encoded_len": Value("int32"), "grouped_sp_emb": Sequence(Value("float32")),
        "clip_sp_emb": Sequence(Value("float32")), "speaker": Value("string"),
        "duration": Value("float64"), "source": Value("string"),
    })


def entry(folder: Path, tag: str | None) -> dict:
    """One ``hf_datasets`` item of the official dataset_config.yaml."""
    return {
        "reponame": str(folder), "name": None, "split": "train", "text_col_name": "text",
        **{f"nano_layer_{c}": f"nano_layer_{c}" for c in range(1, 5)},
        "encoded_len": "encoded_len", "speaker_emb": "grouped_sp_emb", "language_tag": tag,
    }


def write(folder: Path, final: Path, utts, codes: dict, embs: dict, means: dict) -> Path:
    """Write ``folder/<tag>/train-*.parquet`` and ``folder/dataset_config.yaml``.

    ``final`` is where ``folder`` will live once the caller moves it into place: the config
    names the parquet folders there (edit ``reponame`` after copying them elsewhere).
    """
    import yaml
    from datasets import Dataset

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups = rows_by_tag(utts, codes, embs, means)
    names = {folder_name(t) for t in groups}
    if len(names) != len(groups):
        raise ValueError(f"tags {sorted(map(str, groups))} map to clashing folder names")
    entries = []
    for tag, rows in sorted(groups.items(), key=lambda kv: folder_name(kv[0])):
        name = folder_name(tag)
        (folder / name).mkdir()
        Dataset.from_list(rows, features=features()).to_parquet(
            str(folder / name / "train-00000-of-00001.parquet"))
        entries.append(entry(Path(final) / name, tag))
    config = {"max_duration_sec": MAX_DURATION_SEC, "lenght_statistics": False,
              "hf_datasets": entries}
    header = ("# configs/dataset_config.yaml for kani-tts-2-pretrain (prepare_dataset.py): one "
              "entry per tag.\n# reponame is a local parquet folder; edit it after moving the "
              "folders. Frames are not de-duplicated here: the official prep does it.\n")
    (folder / CONFIG).write_text(header + yaml.safe_dump(config, sort_keys=False,
                                                         allow_unicode=True))
    return folder
