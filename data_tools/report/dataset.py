"""The dataset report as the write stage hands it over: what it reads from the work folder (every
rejection weighed by its item's length and owner, the stages' own files, their throughput), and
the files it puts in the dataset folder (``report.json``, ``report.md`` with its histograms,
``report.html`` with players). ``stages``: the pipeline's stage names, in order."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from data_tools.records import Utterance, manifest_path, read_jsonl, read_manifest, stage_dir
from data_tools.report import histograms, page, summary as report, throughput
from kani_adapt.dataset import DatasetLayout

log = logging.getLogger("data_tools.stages.write")


def known_items(work: Path, stages: list[str]) -> tuple[dict[str, float], dict[str, tuple]]:
    """({id: seconds}, {id: (tag, speaker)}) of every item the manifest of one of ``stages``
    held, so a rejection can be weighed and attributed; a cut's drops belong to their recording."""
    seconds, owners = {}, {}
    for name in stages:
        for u in read_manifest(manifest_path(work, name)):
            seconds.setdefault(u.id, u.duration)
            owners.setdefault(u.id, (u.tag, u.speaker))
    for r in read_jsonl(work / "rejected.jsonl"):
        parent = r["id"].split("#")[0]
        if r["id"] not in owners:
            owners[r["id"]] = owners.get(parent, ("?", "?"))
    return seconds, owners


def extras(work: Path, stages: list[str], written: dict, run: dict,
           not_run: list[dict] = ()) -> dict:
    """What the report shows beside the rows, from the stages' own files in ``work``;
    ``written``: the write stage's options, ``run``: how the run went (the stages that ran),
    ``not_run``: the checks it left out, each with why."""
    def load(path: Path):
        return json.loads(path.read_text()) if path.exists() else None

    codec = load(stage_dir(work, "tokenize") / "codec.json") or {}
    ingested = report.input_inventory(read_manifest(manifest_path(work, "ingest")),
                                      list(read_jsonl(stage_dir(work, "ingest") / "rejected.jsonl")))
    return {"coverage": load(stage_dir(work, "filter") / "coverage.json"),
            "input_totals": ingested, "not_run": list(not_run),
            "speaker_embeddings": load(stage_dir(work, "embed") / "speakers.json") or {},
            "inputs": load(stage_dir(work, "ingest") / "inputs.json") or {},
            "throughput": throughput.collect(work, stages),
            "options": {**written, "codec": codec.get("codec"),
                        "codec_class": codec.get("codec_class"), **run}}


def summarise(rows: list[dict], kept_frames: list[int], work: Path, stages: list[str],
              extra: dict, out: Path = Path(".")) -> dict:
    """The report's figures (report.json), with a warning per group whose codec keeps too few
    frames per second (naming the report in ``out``, the dataset folder); ``extra``: what
    :func:`extras` gathered."""
    rejected = list(read_jsonl(Path(work) / "rejected.jsonl"))
    durations, owners = known_items(work, stages)
    summary = report.summarise(rows, rejected, extra,
                               report.rejected_seconds(rejected, durations), owners, kept_frames)
    for group in summary["frames_per_second"]["low"]:
        log.warning("write: %s keeps only %.2f codec frames per second after repeat-dropping "
                    "(< %g): a broken codec or silent audio? See %s", group.replace(":", " "),
                    report.rate_of(summary["frames_per_second"], group), report.MIN_FRAMES_PER_SECOND,
                    Path(out) / "report.md")
    return summary


def write(layout: DatasetLayout, summary: dict, rows: list[dict], kept: list[Utterance],
          work: Path, stages: list[str]) -> None:
    """report.json, report.md and its histograms, report.html in the dataset folder being
    written (``layout``)."""
    layout.report_json.write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    pictures = histograms.write_histograms(rows, layout.report)
    text = report.markdown(summary, pictures)
    layout.report.write_text(text, encoding="utf-8")
    rejected = list(read_jsonl(Path(work) / "rejected.jsonl"))
    page.write_page(layout.report.parent, text, kept, rejected, work, stages)
