"""``report.html`` beside the dataset report: its tables on top, then players for a sample of the
kept clips (a few per speaker) and of the rejected ones (a few per rejection reason, with the
reason and its detail), filtered by kept/rejected, reason, speaker and tag. The sampled clips are
copied into ``report_audio/`` so the dataset folder plays from disk on its own.

A player and its picture hold at most the first ``EXCERPT_SECONDS`` of a recording, decoded no
further: a rejected recording of hours (``no_speech``, ``too_long_file``) costs the report what a
clip costs, and the page says it shows an excerpt."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from data_tools.records import Utterance, manifest_path, read_manifest
from kani_adapt.pages import html as pages
from kani_adapt.pages.plots import PICTURE_SECONDS

PAGE = "report.html"
AUDIO = "report_audio"
KEPT_PER_SPEAKER = 3
REJECTED_PER_REASON = 3
EXCERPT_SECONDS = PICTURE_SECONDS  # longer recordings are shown by their start


def clips_by_id(work: Path, stages: list[str]) -> dict[str, Utterance]:
    """Every clip the manifest of one of ``stages`` (in order) held, the latest one's version."""
    out: dict[str, Utterance] = {}
    for name in stages:
        out.update({u.id: u for u in read_manifest(manifest_path(work, name))})
    return out


def _sample(kept: list[Utterance], rejected: list[dict]) -> tuple[list[Utterance], list[dict]]:
    per_speaker: dict[str, list] = defaultdict(list)
    for u in kept:
        if len(per_speaker[u.speaker]) < KEPT_PER_SPEAKER:
            per_speaker[u.speaker].append(u)
    per_reason: dict[tuple, list] = defaultdict(list)
    for r in rejected:
        if len(per_reason[(r["stage"], r["reason"])]) < REJECTED_PER_REASON:
            per_reason[(r["stage"], r["reason"])].append(r)
    return [u for us in per_speaker.values() for u in us], [r for rs in per_reason.values() for r in rs]


def _cell(folder: Path, work: Path, clip: Utterance | None, name: str) -> list[pages.Part]:
    from kani_adapt.audio import AudioReadError, probe, read, write_clip
    from kani_adapt.pages.plots import spectrogram_png

    source = work / clip.audio if clip is not None else None
    if source is None or not source.is_file():
        return [pages.text("no audio (the file could not be read or was never cut)", "muted")]
    wav = folder / AUDIO / f"{name}.wav"
    try:
        seconds = probe(source).seconds
        audio = read(source, max_seconds=EXCERPT_SECONDS, check_finite=False)
    except (AudioReadError, OSError, RuntimeError, ValueError) as err:
        return [pages.text(f"no audio (unreadable: {err})", "muted")]
    write_clip(wav, audio.audio, audio.sample_rate)
    png = wav.with_suffix(".png")
    spectrogram_png(audio.audio, audio.sample_rate, png)
    shown = [pages.clip(pages.link(wav, folder), pages.link(png, folder), name)]
    if seconds > EXCERPT_SECONDS:
        shown.append(pages.text(f"the first {EXCERPT_SECONDS:g} s of {seconds:.0f} s", "muted"))
    return shown


def write_page(folder: Path, report_md: str, kept: list[Utterance], rejected: list[dict],
               work: Path, stages: list[str]) -> Path:
    """``folder/report.html`` (``folder``: the dataset folder being written; ``stages``: the
    names of the stages whose manifests the clips are found in, in pipeline order)."""
    clips = clips_by_id(work, stages)
    kept, rejected = _sample(kept, rejected)
    table = pages.ClipTable(["clip", "speaker", "text", "audio", "why"],
                            filters=["kind", "reason", "speaker", "tag"])
    for k, u in enumerate(kept):
        table.add({"kind": "kept", "reason": "", "speaker": u.speaker, "tag": u.tag},
                  {"clip": [pages.text(u.id)], "speaker": [pages.text(f"{u.speaker} ({u.tag or 'no tag'})")],
                   "text": [pages.text(u.text)], "audio": _cell(folder, work, u, f"kept_{k:04d}"),
                   "why": [pages.text(f"kept, {u.duration:.2f} s")]})
    for k, r in enumerate(rejected):
        clip = clips.get(r["id"]) or clips.get(r["id"].split("#")[0])
        reason = f"{r['stage']}: {r['reason']}"
        table.add({"kind": "rejected", "reason": reason, "speaker": clip.speaker if clip else "?",
                   "tag": clip.tag if clip else "?"},
                  {"clip": [pages.text(r["id"])], "speaker": [pages.text(clip.speaker if clip else "?")],
                   "text": [pages.text(clip.text if clip else "")],
                   "audio": _cell(folder, work, clip, f"rejected_{k:04d}"),
                   "why": [pages.text(reason, "flag"), pages.text(r.get("detail", ""))]})
    listen = pages.Section("Listen", f"Up to {KEPT_PER_SPEAKER} kept clips per speaker and up to "
                                     f"{REJECTED_PER_REASON} rejected clips per reason.", table)
    return pages.write_page(folder / PAGE, "Dataset report", report_md, [listen])
