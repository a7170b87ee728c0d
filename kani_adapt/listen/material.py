"""What a listening test plays: the systems and items of one or more eval folders.

Systems are the checkpoints of every eval folder (one checkpoint evaluated in two folders is one
system), the codec round trip and the recordings. Items are matched by id across folders; an
item's hidden reference is its recording when the recording says the item's text, else its codec
round trip (a dataset's recordings exist only as codes); without one, the item has no MUSHRA page
and no attention check. Only sample ``sample`` of each generation is played.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from kani_adapt.core.errors import DataError
from kani_adapt.eval.page import wav_path
from kani_adapt.eval.run import CODEC_CEILING, RECORDING_WAVS, RECORDINGS_ROW

REFERENCE, ANCHOR = "reference", "anchor"  # the hidden reference and the low anchor (MUSHRA)


@dataclass
class Item:
    id: str
    text: str
    tag: str
    speaker: str
    reference: Path | None = None  # the hidden reference's audio
    reference_system: str = ""  # which system that is (recording or codec_roundtrip)


@dataclass
class Material:
    folders: list[Path]
    systems: list[str]  # generated checkpoints first, then codec_roundtrip and recording
    items: dict[str, Item]
    clips: dict[tuple[str, str], Path]  # (system, item id) -> wav
    tags: dict[str, str] = field(default_factory=dict)  # tag -> description for listeners
    checkpoints: dict[str, str] = field(default_factory=dict)  # system -> checkpoint path
    languages: dict[str, str] = field(default_factory=dict)  # tag -> language (eval.json's tags)
    # (system, item id) -> (eval folder, checkpoint name there) of each generated clip
    sources: dict[tuple[str, str], tuple[Path, str]] = field(default_factory=dict)

    def systems_of(self, item: str) -> list[str]:
        return [s for s in self.systems if (s, item) in self.clips]

    def fingerprint(self) -> str:
        """Changes when the audio or the texts change (a re-run eval into the same folder)."""
        h = hashlib.sha256()
        for (system, item), path in sorted(self.clips.items()):
            stat = path.stat()
            h.update(f"{system}|{item}|{self.items[item].text}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def describe(self, tag: str) -> str:
        return self.tags.get(tag) or tag


def _same_words(a: str, b: str) -> bool:
    from kani_adapt.scorers.text import scoring_text

    return scoring_text(a or "", "") == scoring_text(b or "", "")


def _read(folder: Path):
    import pandas as pd

    if not (folder / "utterances.parquet").is_file() or not (folder / "eval.json").is_file():
        raise DataError(f"{folder}: not an eval folder (no utterances.parquet / eval.json); "
                        "run `kani-adapt eval ... --out FOLDER` first")
    return pd.read_parquet(folder / "utterances.parquet"), json.loads((folder / "eval.json").read_text())


def _system_name(name: str, path: str, folder: Path, seen: dict[str, str]) -> str:
    for system, known in seen.items():
        if known == path:
            return system
    return name if name not in seen else f"{folder.parent.name}.{name}"


def _read_tags(mat: Material, meta: dict) -> None:
    """Each tag's description and language from eval.json (an earlier folder's win); folders
    written before eval.json kept every fact of a tag have only its description."""
    facts = meta.get("tags") or {t: {"description": d} for t, d in
                                     meta.get("tag_descriptions", {}).items()}
    for tag, fact in facts.items():
        if fact.get("description"):
            mat.tags.setdefault(tag, fact["description"])
        if fact.get("language"):
            mat.languages.setdefault(tag, fact["language"])


def load_material(folders: list[Path], sample: int = 0, tags: dict[str, str] | None = None) -> Material:
    mat = Material([Path(f) for f in folders], [], {}, {})
    generated: list[str] = []
    for folder in mat.folders:
        df, meta = _read(folder)
        _read_tags(mat, meta)
        ceiling = {str(r["item"]): r for r in df[df.checkpoint == CODEC_CEILING].to_dict("records")}
        names = {n: _system_name(n, p, folder, mat.checkpoints) for n, p in meta["checkpoints"].items()}
        mat.checkpoints.update({names[n]: p for n, p in meta["checkpoints"].items()})
        generated += [s for s in names.values() if s not in generated]
        rows = df[~df.checkpoint.isin([CODEC_CEILING, RECORDINGS_ROW])  # scored references, no clips
                  & (df["sample"] == sample)].to_dict("records")
        if not rows:
            raise DataError(f"{folder}: no generated clips of sample {sample} (see --sample)")
        for r in rows:
            item = _item(mat, r, ceiling.get(str(r.get("reference") or "")), folder)
            wav = wav_path(folder, r["checkpoint"], item.id, sample)
            if wav.is_file():  # a checkpoint evaluated in two folders: the first folder's clip
                mat.clips.setdefault((names[r["checkpoint"]], item.id), wav)
                mat.sources.setdefault((names[r["checkpoint"]], item.id), (folder, str(r["checkpoint"])))
    mat.tags.update(tags or {})
    extra = [s for s in (CODEC_CEILING, RECORDING_WAVS) if any(k[0] == s for k in mat.clips)]
    mat.systems = generated + extra
    return mat


def _item(mat: Material, row: dict, ceiling: dict | None, folder: Path) -> Item:
    """The item of a generated row, registered once (with its reference clips)."""
    id_ = str(row["item"])
    known = mat.items.get(id_)
    if known is not None:
        if known.text != row["text"]:
            raise DataError(f"{folder}: item {id_} says {row['text']!r} here but {known.text!r} in "
                            f"{mat.folders[0]}; listening across eval folders needs the same eval set")
        return known
    item = mat.items[id_] = Item(id_, str(row["text"]), str(row.get("tag") or ""), str(row["speaker"]))
    ref = str(row.get("reference") or "")
    if ref and ceiling is not None and _same_words(ceiling.get("text", ""), item.text):
        for system in (RECORDING_WAVS, CODEC_CEILING):  # the recording wins when there is one
            wav = wav_path(folder, system, ref)
            if wav.is_file():
                mat.clips[(system, id_)] = wav
                if item.reference is None:
                    item.reference, item.reference_system = wav, system
    return item
