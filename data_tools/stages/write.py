"""Stage write: the tokenized dataset (:mod:`kani_adapt.dataset`: its columns, folder layout and
writer; hf/ and parquet/, official/ for the official pretraining code), a NeMo manifest of the
processed clips for codec training, and the report, which the report wing writes into it
(data_tools/report/dataset.py: report.md, report.json, report.html).

The float columns stages declare (``Stage.columns``: cer and ASR confidence from transcribe,
DNSMOS from filter) ride along, None where a clip has no value. The whole output folder is built
under a temporary name and renamed, so a reader never sees half a dataset.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from data_tools import official_dataset
from data_tools.records import (Utterance, manifest_path, read_jsonl, read_manifest,
                                read_stage_results, stage_dir)
from data_tools.report import dataset as dataset_report
from data_tools.stages import embed, tokenize
from data_tools.stages.kit import BaseStage, Pipeline
from kani_adapt import dataset, tokens
from kani_adapt.codec.manifest import manifest_line
from kani_adapt.config.wiring import LocalPath
from kani_adapt.core.atomic import write_folder
from kani_adapt.core.errors import DataError
from kani_adapt.dataset import DatasetLayout
from kani_adapt.text import frontend

NAME = "write"


@dataclass
class WriteConfig:
    out: LocalPath = ""  # dataset folder; "": <work>/dataset
    drop_repeated_frames: bool = True  # as the official prep (released weights); changes timing


def stage_columns(work: Path, pipeline: Pipeline) -> tuple[list[str], dict[str, dict]]:
    """(column names, {clip id: {column: value}}) of every enabled or finished stage that
    declares columns, read from its logs."""
    names, values = [], {}
    for st in pipeline.stages:
        if not getattr(st, "columns", ()):
            continue
        names += [c for c in st.columns if c not in names]
        for result in read_stage_results(work, st.name).values():
            for clip, cols in result["extra"].get("columns", {}).items():
                values.setdefault(clip, {}).update(cols)
    return names, values


def rows_for(utts: list[Utterance], codes: dict, embs: dict, means: dict,
             drop_repeats: bool, columns: tuple[list[str], dict] = ([], {})) -> list[dict]:
    """One dataset row per clip; every clip must have codes and an embedding."""
    missing = [u.id for u in utts if u.id not in codes or u.id not in embs]
    if missing:
        raise DataError(f"write: {len(missing)} kept clips lack codes or a speaker embedding "
                        f"(first: {missing[0]}); finish `data-tools embed` and every "
                        "`data-tools tokenize --shard i/N` first")
    rows = []
    for u in utts:
        frames = codes[u.id].T  # (frames, 4)
        if drop_repeats:
            frames = tokens.drop_repeated_frames(frames)
        rows.append(dataset.make_row(u.text, u.tag, frames, u.speaker, embs[u.id], means[u.speaker],
                                     u.duration, u.id,
                                     {c: columns[1].get(u.id, {}).get(c) for c in columns[0]},
                                     u.text_override))
    return rows


def expected(work: Path, pipeline: Pipeline) -> list[Utterance]:
    """The clips the dataset must hold: the last chain stage's, minus the branches' rejections
    (every stage after ``filter``: embed, tokenize)."""
    order = pipeline.stages
    names = [st.name for st in order]
    branches = [st.name for st in order[names.index("filter") + 1:] if st.resumable]
    dropped = {r["id"] for name in branches
               for r in read_jsonl(stage_dir(work, name) / "rejected.jsonl")}
    path = manifest_path(work, "filter")
    if not path.exists():
        raise DataError(f"write: no filtered clips in {work}: run `data-tools filter` first")
    return [u for u in read_manifest(path) if u.id not in dropped]


def _nemo_manifest(utts: list[Utterance], work: Path) -> str:
    return "".join(manifest_line((work / u.audio).resolve(), u.duration, u.text, u.speaker, u.tag)
                   for u in utts)


def build(cfg: WriteConfig, work: Path, inputs: list[Utterance], run: dict,
          not_run: list[dict], pipeline: Pipeline) -> Path:
    """The dataset folder of ``inputs``; ``run`` (the stages that ran) and ``not_run`` (the
    checks left out, each with why) go into its report."""
    work, names = Path(work), pipeline.names()
    out = Path(cfg.out) if cfg.out else DatasetLayout.in_work(work).root
    embs = embed.load_embeddings(work)
    means = {s: m["mean"] for s, m in
             embed.speaker_means({u.id: embs[u.id] for u in inputs if u.id in embs},
                                 {u.id: u.speaker for u in inputs}).items()}
    codes = tokenize.load_codes(work)
    columns = stage_columns(work, pipeline)
    rows = rows_for(inputs, codes, embs, means, cfg.drop_repeated_frames, columns)
    kept = [len(tokens.drop_repeated_frames(codes[u.id].T)) for u in inputs]
    extra = dataset_report.extras(work, names, {"drop_repeated_frames": cfg.drop_repeated_frames},
                                  run, not_run)
    summary = dataset_report.summarise(rows, kept, work, names, extra, out)

    def write(tmp: Path) -> None:
        layout = DatasetLayout(tmp)
        dataset.write_tables(dataset.to_table(rows, columns[0]), layout)
        official_dataset.write(layout.official, DatasetLayout(out.resolve()).official, inputs,
                               codes, embs, means)
        layout.nemo_manifest.write_text(_nemo_manifest(inputs, work), encoding="utf-8")
        sources = (extra.get("inputs") or {}).get("sources") or []
        if sources:  # the licences of packaged contributions, for training's adapter card
            layout.sources.write_text(json.dumps(sources, ensure_ascii=False, indent=1),
                                      encoding="utf-8")
        stored = stage_dir(work, "filter") / frontend.FILE  # the frontend the texts went through
        if stored.is_file():
            shutil.copyfile(stored, tmp / frontend.FILE)
        dataset_report.write(layout, summary, rows, inputs, work, names)

    # replaced as a whole: rows from an earlier run must not linger
    return write_folder(out, write)


class Write(BaseStage):
    name = section = NAME
    config = WriteConfig
    help = "Hugging Face dataset + parquet, NeMo manifest, Markdown/JSON report"
    inputs, chain, resumable = (), False, False

    def items(self, ctx) -> list[Utterance]:
        return expected(ctx.work, ctx.pipeline)

    def decide(self, ctx, items: list, results: dict) -> tuple[list, list[dict]]:
        ran = [st.name for st in ctx.pipeline.stages if st.enabled(ctx.cfg) and st.resumable]
        ctx.state["out"] = build(ctx.cfg.write, ctx.work, items, {
            "stages": " -> ".join(ran), "alignment": "on" if "align" in ran else "off"},
            not_run(ctx.cfg, ctx.pipeline), ctx.pipeline)
        return items, []


def not_run(cfg, pipeline: Pipeline) -> list[dict]:
    """The stages and checks this config left out, each with why (shown in the report)."""
    out = [{"check": st.name, "why": st.why_off(cfg)} for st in pipeline.stages
           if not st.enabled(cfg)]
    ran = {st.name for st in pipeline.stages if st.enabled(cfg)}
    if "transcribe" in ran and not cfg.transcribe.verify:
        out.append({"check": "given transcripts against ASR", "why": "transcribe.verify is false"})
    if "transcribe" not in ran:
        out.append({"check": "given transcripts against ASR", "why": "transcribe did not run"})
    if not cfg.filter.dnsmos:
        out.append({"check": "DNSMOS quality", "why": "filter.dnsmos is false"})
    if not cfg.filter.tokenizer:
        out.append({"check": "tokenizer coverage",
                    "why": "filter.tokenizer is empty (name the generator checkpoint)"})
    from data_tools.speech import voices

    if not voices.wanted(cfg):
        out.append({"check": "one voice per recording (voice changes)",
                    "why": "segment.voice_changes is off" if cfg.segment.voice_changes == "off"
                    else f"embed.model {cfg.embed.model} is not on this machine"})
    return out


STAGE = Write()
