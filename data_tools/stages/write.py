"""Stage write: the tokenized dataset (:mod:`kani_adapt.dataset`: its columns, folder layout and
writer; hf/ and parquet/, official/ for the official pretraining code), a NeMo manifest of the
processed clips for codec training, and the Markdown + JSON report.

The float columns stages declare (``Stage.columns``: cer and ASR confidence from transcribe,
DNSMOS from filter) ride along, None where a clip has no value. The whole output folder is built
under a temporary name and renamed, so a reader never sees half a dataset.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from data_tools.stages import embed, tokenize
from data_tools.report import histograms, summary as report, page as report_page, throughput
from data_tools import official_dataset, registry
from data_tools.config import WriteConfig
from data_tools.records import Utterance, read_jsonl, read_manifest
from data_tools.runner import BaseStage
from data_tools.records import manifest_path, read_stage_results, stage_dir
from kani_adapt import dataset, tokens
from kani_adapt.text import frontend
from kani_adapt.core.atomic import write_folder
from kani_adapt.codec.manifest import manifest_line
from kani_adapt.dataset import DatasetLayout
from kani_adapt.core.errors import DataError

NAME = "write"
log = logging.getLogger("data_tools.stages.write")


def stage_columns(work: Path) -> tuple[list[str], dict[str, dict]]:
    """(column names, {clip id: {column: value}}) of every enabled or finished stage that
    declares columns, read from its logs."""
    names, values = [], {}
    for st in registry.stages():
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


def expected(work: Path) -> list[Utterance]:
    """The clips the dataset must hold: the last chain stage's, minus the branches' rejections
    (every stage after ``filter``: embed, tokenize)."""
    order = registry.stages()
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


def build(cfg: WriteConfig, work: Path, inputs: list[Utterance], extras: dict) -> Path:
    work = Path(work)
    out = Path(cfg.out) if cfg.out else DatasetLayout.in_work(work).root
    embs = embed.load_embeddings(work)
    means = {s: m["mean"] for s, m in
             embed.speaker_means({u.id: embs[u.id] for u in inputs if u.id in embs},
                                 {u.id: u.speaker for u in inputs}).items()}
    codes = tokenize.load_codes(work)
    columns = stage_columns(work)
    rows = rows_for(inputs, codes, embs, means, cfg.drop_repeated_frames, columns)
    rejected = list(read_jsonl(work / "rejected.jsonl"))
    durations, owners = known_items(work)
    kept = [len(tokens.drop_repeated_frames(codes[u.id].T)) for u in inputs]
    summary = report.summarise(rows, rejected, _extras(work, cfg, extras),
                               report.rejected_seconds(rejected, durations), owners, kept)
    for group in summary["frames_per_second"]["low"]:
        log.warning("write: %s keeps only %.2f codec frames per second after repeat-dropping "
                    "(< %g): a broken codec or silent audio? See %s", group.replace(":", " "),
                    report.rate_of(summary["frames_per_second"], group), report.MIN_FRAMES_PER_SECOND,
                    out / "report.md")

    def write(tmp: Path) -> None:
        layout = DatasetLayout(tmp)
        dataset.write_tables(dataset.to_table(rows, columns[0]), layout)
        official_dataset.write(layout.official, DatasetLayout(out.resolve()).official, inputs,
                               codes, embs, means)
        layout.nemo_manifest.write_text(_nemo_manifest(inputs, work), encoding="utf-8")
        stored = stage_dir(work, "filter") / frontend.FILE  # the frontend the texts went through
        if stored.is_file():
            shutil.copyfile(stored, tmp / frontend.FILE)
        layout.report_json.write_text(json.dumps(summary, ensure_ascii=False, indent=1))
        pictures = histograms.write_histograms(rows, layout.report)
        text = report.markdown(summary, pictures)
        layout.report.write_text(text, encoding="utf-8")
        report_page.write_page(layout.report.parent, text, inputs, rejected, work)  # players

    # replaced as a whole: rows from an earlier run must not linger
    return write_folder(out, write)


def known_items(work: Path) -> tuple[dict[str, float], dict[str, tuple]]:
    """({id: seconds}, {id: (tag, speaker)}) of every item a stage's manifest held, so a
    rejection can be weighed and attributed; a cut's drops belong to their recording."""
    seconds, owners = {}, {}
    for name in registry.names():
        for u in read_manifest(manifest_path(work, name)):
            seconds.setdefault(u.id, u.duration)
            owners.setdefault(u.id, (u.tag, u.speaker))
    for r in read_jsonl(work / "rejected.jsonl"):
        parent = r["id"].split("#")[0]
        if r["id"] not in owners:
            owners[r["id"]] = owners.get(parent, ("?", "?"))
    return seconds, owners


def _extras(work: Path, cfg: WriteConfig, extras: dict) -> dict:
    def load(path: Path):
        return json.loads(path.read_text()) if path.exists() else None

    codec = load(stage_dir(work, "tokenize") / "codec.json") or {}
    ingested = report.input_inventory(read_manifest(manifest_path(work, "ingest")),
                                      list(read_jsonl(stage_dir(work, "ingest") / "rejected.jsonl")))
    return {"coverage": load(stage_dir(work, "filter") / "coverage.json"),
            "input_totals": ingested, "not_run": extras.pop("not_run", []),
            "speaker_embeddings": load(stage_dir(work, "embed") / "speakers.json") or {},
            "inputs": load(stage_dir(work, "ingest") / "inputs.json") or {},
            "throughput": throughput.collect(work, registry.names()),
            "options": {"drop_repeated_frames": cfg.drop_repeated_frames,
                        "codec": codec.get("codec"), "codec_class": codec.get("codec_class"),
                        **extras}}


class Write(BaseStage):
    name = section = NAME
    help = "Hugging Face dataset + parquet, NeMo manifest, Markdown/JSON report"
    inputs, chain, resumable = (), False, False

    def items(self, ctx) -> list[Utterance]:
        return expected(ctx.work)

    def decide(self, ctx, items: list, results: dict) -> tuple[list, list[dict]]:
        ran = [st.name for st in registry.stages() if st.enabled(ctx.cfg) and st.resumable]
        ctx.state["out"] = build(ctx.cfg.write, ctx.work, items, {
            "stages": " -> ".join(ran), "alignment": "on" if "align" in ran else "off",
            "not_run": not_run(ctx.cfg)})
        return items, []


def not_run(cfg) -> list[dict]:
    """The stages and checks this config left out, each with why (shown in the report)."""
    out = [{"check": st.name, "why": st.why_off(cfg)} for st in registry.stages()
           if not st.enabled(cfg)]
    ran = {st.name for st in registry.stages() if st.enabled(cfg)}
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
