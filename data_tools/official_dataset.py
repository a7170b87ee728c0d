"""The dataset as the official pretraining code (kani-tts-2-pretrain) reads it.

Its ``prepare_dataset.py`` loads every entry of ``configs/dataset_config.yaml`` with
``datasets.load_dataset(reponame, name, split=split)`` (a ``save_to_disk`` folder is refused;
a local folder of parquet files works), renames the columns the entry names, and prefixes the
text with the entry's single ``language_tag``: there is no tag column. So each tag gets its own
parquet folder, and ``dataset_config.yaml`` lists them with their tags.

The frames are written as the codec produced them: the official prep drops repeated frames
itself and filters on the frames / 12.5 seconds, which must be the real length. The rows and
their columns are :func:`kani_adapt.dataset.official_row`'s (the speaker column is the
per-speaker mean, as in the official example config).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from kani_adapt import dataset

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
        frames = np.asarray(codes[u.id]).T  # (frames, 4)
        row = dataset.official_row(u.text, frames, u.speaker, embs[u.id], means[u.speaker],
                                   u.duration, u.id)
        tag = (u.tag or "").strip().lower() or None
        groups.setdefault(tag, []).append(row)
    return groups


def entry(folder: Path, tag: str | None) -> dict:
    """One ``hf_datasets`` item of the official dataset_config.yaml."""
    return {"reponame": str(folder), "name": None, "split": "train",
            **dataset.official_columns(), "language_tag": tag}


def write(folder: Path, final: Path, utts, codes: dict, embs: dict, means: dict) -> Path:
    """Write ``folder/<tag>/train-*.parquet`` and ``folder/dataset_config.yaml``.

    ``final`` is where ``folder`` will live once the caller moves it into place: the config
    names the parquet folders there (edit ``reponame`` after copying them elsewhere).
    """
    import yaml

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
        dataset.to_table(rows, official=True).to_parquet(
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
