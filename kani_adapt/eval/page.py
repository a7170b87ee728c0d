"""``index.html`` of an eval folder: the summary tables of eval.md on top, then one row per
utterance with players for the recording, the codec round trip and every checkpoint, the texts
(what was asked for, what ASR heard), the metrics, failure flags and spectrograms, filtered by
tag, speaker and failure. Built from the folder alone (eval.md, utterances.parquet, wavs/), so it
is rebuilt whenever eval.md changes (``kani-adapt listen --results`` adds its section)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from kani_adapt.pages import html as pages
from kani_adapt.eval.run import CODEC_CEILING, RECORDING_WAVS, RECORDINGS_ROW
from kani_adapt.scorers.registry import columns

INDEX = "index.html"
SPECTROGRAMS = "spectrograms"


def wav_path(folder: Path, system: str, item: str, sample: int | None = None) -> Path:
    """Where run_eval wrote a clip: wavs/<checkpoint>/<item>_s<k>.wav, wavs/<ceiling or
    recording>/<reference>.wav."""
    name = f"{item}_s{sample}.wav" if sample is not None else f"{item}.wav"
    return Path(folder) / "wavs" / system / name


def _spectrogram(folder: Path, wav: Path) -> Path:
    from kani_adapt.pages.plots import picture_of

    png = folder / SPECTROGRAMS / wav.relative_to(folder / "wavs").with_suffix(".png")
    if not png.is_file() or png.stat().st_mtime < wav.stat().st_mtime:
        picture_of(wav, png)
    return png


def clip_cell(folder: Path, wav: Path, lines: list[pages.Part | None] = ()) -> list[pages.Part]:
    """A player, its spectrogram and some lines of text; a note where no audio was written."""
    if not wav.is_file():
        return [pages.text("no audio", "muted")]
    picture = pages.link(_spectrogram(folder, wav), folder)
    return [pages.clip(pages.link(wav, folder), picture, wav.stem)] + [p for p in lines if p]


def _metrics(row) -> pages.Part | None:
    shown = [f"{m} {row[m]:.3f}" for m in columns()
             if m in row and isinstance(row[m], float) and not math.isnan(row[m])]
    if isinstance(row.get("accent_top"), str) and row["accent_top"]:
        shown.append(f"accent heard: {row['accent_top']}")
    shown += [str(row[k]) for k in sorted(row) if k.endswith("_reason") and isinstance(row[k], str)
              and "not measured" in row[k]]  # a judge that could not measure says why
    return pages.text(", ".join(shown)) if shown else None


def _flags(row) -> pages.Part | None:
    reasons = str(row.get("failure_reasons") or "")
    return pages.text(reasons, "flag") if reasons else None


def _heard(row) -> pages.Part | None:
    text = row.get("asr_text")
    return pages.text(text, "heard") if isinstance(text, str) and text else None


def utterance_table(folder: Path, df) -> pages.ClipTable:
    # the reference rows (codec ceiling, the recordings' own scores) have their own columns
    systems = [c for c in dict.fromkeys(df["checkpoint"]) if c not in (CODEC_CEILING, RECORDINGS_ROW)]
    table = pages.ClipTable(["item", "text", "recording", CODEC_CEILING, *systems],
                            filters=["tag", "speaker", "failure"])
    ceiling = {str(r["item"]): r for r in df[df.checkpoint == CODEC_CEILING].to_dict("records")}
    generated = df[~df.checkpoint.isin([CODEC_CEILING, RECORDINGS_ROW])].to_dict("records")
    keys = list(dict.fromkeys((str(r["item"]), int(r["sample"])) for r in generated))
    by_key = {(str(r["item"]), int(r["sample"]), r["checkpoint"]): r for r in generated}
    for item, sample in keys:
        rows = {s: by_key.get((item, sample, s)) for s in systems}
        first = next(r for r in rows.values() if r is not None)
        ref = str(first.get("reference") or "")
        ceil = ceiling.get(ref)
        failed = [s for s, r in rows.items() if r is not None and r.get("failure") == 1.0]
        cells = {"item": [pages.text(f"{item} (sample {sample})"),
                          pages.text(f"{first['speaker']}, {first.get('tag') or 'no tag'}", "muted")],
                 "text": [pages.text(first["text"])],
                 "recording": clip_cell(folder, wav_path(folder, RECORDING_WAVS, ref)) if ref else [],
                 CODEC_CEILING: clip_cell(folder, wav_path(folder, CODEC_CEILING, ref),
                                          [pages.text(ceil.get("text")) if ceil else None,
                                           _heard(ceil) if ceil else None, _metrics(ceil) if ceil else None])
                 if ref else []}
        for s, r in rows.items():
            cells[s] = (clip_cell(folder, wav_path(folder, s, item, sample), [_heard(r), _metrics(r), _flags(r)])
                        if r is not None else [])
        table.add({"tag": first.get("tag") or "", "speaker": first["speaker"],
                   "failure": ", ".join(failed) or "none"}, cells)
    return table


def write_index(folder: Path) -> Path:
    """folder/index.html from the eval folder's own files."""
    import pandas as pd

    folder = Path(folder)
    df = pd.read_parquet(folder / "utterances.parquet")
    summary = (folder / "eval.md").read_text(encoding="utf-8")
    meta = json.loads((folder / "eval.json").read_text(encoding="utf-8"))
    table = utterance_table(folder, df)
    title = f"Evaluation: {', '.join(meta.get('checkpoints', {}))}"
    utterances = pages.Section("Utterances", "Every utterance with its players (recording, codec "
                               "round trip, each checkpoint), what ASR heard, the metrics and "
                               "failure flags.", table)
    return pages.write_page(folder / INDEX, title, summary, [utterances])
