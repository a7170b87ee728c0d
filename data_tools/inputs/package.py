"""A packaged contribution read as input: the folder ``data-tools contribute package`` writes,
here or on the Hugging Face Hub (ingest's ``contribution`` layout).

The folder: ``README.md`` (the card: YAML front matter with the licence), ``validation.json``
(the gate's report) and ``data/<split>-NNNNN-of-NNNNN.parquet`` with the columns ``audio``
(``{bytes, path}``: each original file's bytes), ``id``, ``text``, ``speaker``, ``accent``,
``language``, ``split`` and ``duration``. Parquet is read with pyarrow (nothing is unpickled):
the text columns first, within a size bound, while the audio stays on disk; ingest then takes
one row's audio bytes at a time (:func:`unpack`), and reads them within the contribution gate's
bounds (data_tools/inputs/bounds.py), as any recording. What strangers wrote stays text.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from kani_adapt.audio import AUDIO_SUFFIXES, AudioReadError
from kani_adapt.core.errors import CheckpointError, ConfigError, DataError

MB = 2 ** 20
SPLITS = ("train", "validation", "test")
AUDIO, REQUIRED = "audio", ("id", "text", "speaker")
TEXT_COLUMNS = ("id", "text", "speaker", "accent", "language", "split", "duration")
SHARD = re.compile(r"(?P<split>[a-z]+)-\d{5}-of-\d{5}\.parquet")
HUB_FILES = ("README.md", "validation.json", "data/*.parquet")  # what a hub id fetches
MAX_CARD_BYTES = 1_000_000  # as the gate reads a card
MAX_REPORT_BYTES = 20_000_000  # validation.json
MAX_TEXT_MB = 256  # the text columns of one parquet file, uncompressed
MAX_ROW_GROUP_MB = 1024  # a row group's audio is read whole: a larger one is refused
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.S)
CARD_FIELDS = ("pretty_name", "license", "license_name", "license_link")


@dataclass(frozen=True)
class Packed:
    """Where one clip's bytes are in its parquet file."""

    row_group: int
    index: int  # row inside the row group
    suffix: str  # of the packaged file name: says the format (".wav" where it says nothing known)


@dataclass(frozen=True)
class Row:
    number: int  # row of the file
    id: str
    text: str | None  # None: see text_error
    text_error: str  # "", missing_transcript, empty_transcript, transcript_too_long
    speaker: str
    accent: str
    seconds: float | None  # as packaged (the length the gate measured)
    packed: Packed


def front_matter(text: str, path: Path) -> tuple[dict, str]:
    """(YAML mapping, Markdown body) of a card; DataError naming the file and the fix."""
    import yaml

    match = FRONT_MATTER.match(text.lstrip("\ufeff"))
    if not match:
        raise DataError(f"{path}: no YAML front matter; start the file with a line '---', the "
                        "card fields, and another '---' (see data_tools/templates/"
                        "contribution_card.md)")
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 2}" if where else ""
        raise DataError(f"{path}:{line} the front matter is not valid YAML "
                        f"({getattr(err, 'problem', err)}); fix the indentation or quoting") \
            from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: the front matter must be a mapping of fields (license: ..., "
                        "language: ...)")
    return data, text[match.end():]


def locate(path: str, hub_id: str) -> Path:
    """The package folder: ``path``, or ``hub_id`` fetched through the Hugging Face cache (one
    line when the hub is offline and the cache lacks it)."""
    if hub_id:
        from kani_adapt.core import hub

        if not hub.is_hub_id(hub_id):
            raise ConfigError(f"ingest source hub={hub_id!r}: not a hub dataset id (owner/name)")
        try:
            return hub.fetch(hub_id, HUB_FILES, repo_type="dataset")
        except CheckpointError as err:
            if hub.offline():
                raise ConfigError(
                    f"ingest source hub={hub_id}: not in the local Hugging Face cache and the "
                    "hub is offline (HF_HUB_OFFLINE is set); fetch it where the hub is reachable "
                    f"(`hf download {hub_id} --repo-type dataset --local-dir DIR`) and give "
                    "path: DIR") from None
            raise ConfigError(f"ingest source hub={hub_id}: {err}") from None
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(f"ingest source {root} is not a folder; give the folder `data-tools "
                          "contribute package` wrote (or its hub id as hub: owner/name)")
    return root


def _within(root: Path, path: Path) -> bool:
    """A regular file whose links stay inside the package: ``root``, or for a hub snapshot the
    repository's cache folder (its files are links to the blobs there)."""
    base = root.parent.parent if root.parent.name == "snapshots" else root
    try:
        target = path.resolve(strict=True)
        target.relative_to(base.resolve())
    except (OSError, RuntimeError, ValueError):
        return False
    return target.is_file()


def _small_file(root: Path, name: str, limit: int) -> bytes | None:
    """A regular file inside ``root`` up to ``limit`` bytes (None: absent); ConfigError else."""
    path = root / name
    if not path.exists() and not path.is_symlink():
        return None
    if not _within(root, path):
        raise ConfigError(f"{path}: not a regular file inside the package; not read")
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"{path}: more than {limit // 1_000_000} MB; not a package's {name}")
    return data


def terms(root: Path, where: str) -> dict:
    """What the card and the gate's report say about the data as a whole: its name and licence
    (``license``, with ``license_name``/``license_link`` for ``other``), the checks the gate did
    not run and the thresholds it was given (``where``: the source, as the config names it)."""
    raw = _small_file(root, "README.md", MAX_CARD_BYTES)
    if raw is None:
        raise ConfigError(f"{root / 'README.md'}: a package has a card (README.md) with its "
                          "licence; is this the folder `data-tools contribute package` wrote?")
    try:
        meta, _ = front_matter(raw.decode("utf-8"), root / "README.md")
    except (UnicodeDecodeError, DataError) as err:
        raise ConfigError(f"{root / 'README.md'}: the card is unreadable ({err})") from None
    out = {"source": where, **{k: str(meta[k]) for k in CARD_FIELDS
                               if isinstance(meta.get(k), (str, int, float))}}
    report = _small_file(root, "validation.json", MAX_REPORT_BYTES)
    try:
        gate = json.loads(report) if report else {}
    except ValueError:
        gate = {}
    gate = gate if isinstance(gate, dict) else {}
    for key in ("not_checked", "thresholds_changed"):
        if isinstance(gate.get(key), (list, dict)):
            out[key] = gate[key]
    return out


def shards(root: Path) -> list[tuple[str, Path]]:
    """(split, file) of every parquet shard under ``root/data``, named as the package names them."""
    folder = root / "data"
    if not folder.is_dir() or folder.is_symlink():
        raise ConfigError(f"{folder}: no data folder; is {root} a packaged contribution?")
    found = []
    for path in sorted(folder.iterdir()):
        match = SHARD.fullmatch(path.name)
        if match and match["split"] in SPLITS and _within(root, path):
            found.append((match["split"], path))
    if not found:
        raise ConfigError(f"{folder}: no <split>-NNNNN-of-NNNNN.parquet files")
    return found


def open_shard(path: Path):
    """The parquet file, its schema checked and its text columns' size bounded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(str(path))
    except (pa.ArrowException, OSError) as err:
        raise ConfigError(f"{path}: not a readable parquet file ({err})") from None
    schema = pf.schema_arrow
    missing = [c for c in (AUDIO, *REQUIRED) if c not in schema.names]
    audio = schema.field(AUDIO).type if AUDIO in schema.names else None
    if missing or not (pa.types.is_struct(audio) and audio.get_field_index("bytes") >= 0):
        lacking = ", ".join(missing) or "audio.bytes"
        raise ConfigError(f"{path}: lacks the columns of a package ({lacking}); package it "
                          "with `data-tools contribute package`")
    meta = pf.metadata
    text = sum(meta.row_group(g).column(j).total_uncompressed_size
               for g in range(meta.num_row_groups) for j in range(meta.num_columns)
               if not meta.row_group(g).column(j).path_in_schema.startswith(AUDIO + "."))
    if text > MAX_TEXT_MB * MB:
        raise ConfigError(f"{path}: its text columns hold {text / MB:.0f} MB > {MAX_TEXT_MB} MB; "
                          "not a package's transcripts")
    return pf


def rows(path: Path, limit: int) -> Iterator[Row]:
    """Every row of one shard, its audio left on disk; a transcript over ``limit`` bytes, empty
    or absent is None with its reason."""
    pf = open_shard(path)
    names = pf.schema_arrow.names
    columns = [c for c in TEXT_COLUMNS if c in names]
    table = pf.read(columns=columns + [f"{AUDIO}.path"] if _has_path(pf) else columns)
    starts, total = [], 0
    for g in range(pf.metadata.num_row_groups):
        starts.append(total)
        total += pf.metadata.row_group(g).num_rows
    group = 0
    for n, row in enumerate(table.to_pylist()):
        while group + 1 < len(starts) and n >= starts[group + 1]:
            group += 1
        text, text_error = _text(row.get("text"), limit)
        name = str((row.get(AUDIO) or {}).get("path") or "")
        suffix = Path(name).suffix.lower()
        seconds = row.get("duration")
        yield Row(n, str(row.get("id") or ""), text, text_error, str(row.get("speaker") or ""),
                  str(row.get("accent") or row.get("language") or ""),
                  float(seconds) if isinstance(seconds, (int, float)) else None,
                  Packed(group, n - starts[group], suffix if suffix in AUDIO_SUFFIXES else ".wav"))


def _text(value, limit: int) -> tuple[str | None, str]:
    if not isinstance(value, str):
        return None, "missing_transcript"
    if len(value.encode("utf-8", "surrogatepass")) > limit:
        return None, "transcript_too_long"
    return (value.strip(), "") if value.strip() else (None, "empty_transcript")


def _has_path(pf) -> bool:
    return pf.schema_arrow.field(AUDIO).type.get_field_index("path") >= 0


@functools.lru_cache(maxsize=2)
def _group_audio(path: str, stamp: int, group: int):
    """The audio bytes of one row group (kept for the next rows of the same group)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    meta = pf.metadata.row_group(group)
    size = sum(meta.column(j).total_uncompressed_size for j in range(meta.num_columns)
               if meta.column(j).path_in_schema.startswith(AUDIO + "."))
    if size > MAX_ROW_GROUP_MB * MB:
        raise AudioReadError("row_group_too_large", f"{path}: row group {group} holds "
                             f"{size / MB:.0f} MB of audio > {MAX_ROW_GROUP_MB} MB; re-package "
                             "it with `data-tools contribute package`")
    return pf.read_row_group(group, columns=[f"{AUDIO}.bytes"]).column(AUDIO) \
        .combine_chunks().field("bytes")


def unpack(path: Path, packed: Packed, dest: Path, max_mb: float) -> Path:
    """Write one row's audio bytes to ``dest`` (+ its suffix); AudioReadError with a reason when
    the row holds none or more than ``max_mb``."""
    from kani_adapt.core.atomic import write_file

    blobs = _group_audio(str(path), path.stat().st_mtime_ns, packed.row_group)
    if blobs[packed.index].as_py() is None:
        raise AudioReadError("missing_audio", f"{path}: row group {packed.row_group} row "
                             f"{packed.index} holds no audio bytes")
    size = len(blobs[packed.index].as_buffer())
    if size > max_mb * MB:
        raise AudioReadError("file_too_large", f"{path}: a clip of {size / MB:.1f} MB > "
                             f"max_clip_mb={max_mb:g}; re-export it as 16-bit WAV or FLAC")
    out = dest.with_name(dest.name + packed.suffix)
    write_file(out, lambda tmp: Path(tmp).write_bytes(blobs[packed.index].as_py()))
    return out
