"""Stage filter: measure each clip, normalise its text, then reject by pure rules.

Per-clip measurements are logged item by item (resumable); the decisions that compare clips with
each other (speaking-rate outliers per speaker, exact and near duplicates) run over all of them
at the end, which is cheap. Writes ``filter/coverage.json`` when a tokenizer is configured.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from kani_adapt.text import fertility, frontend
from kani_adapt.text.tags import Tags, languages
from kani_adapt.scorers import textnorm
from data_tools.speech import consistency
from kani_adapt.audio import read_clip
from data_tools.config import FilterConfig
from data_tools.speech.quality import Features, measure
from kani_adapt.core import atomic
from data_tools.records import Utterance, reject_utt
from data_tools.registry import Kept, Resources
from data_tools.runner import BaseStage
from data_tools.records import stage_dir

NAME = "filter"
SILENT_DB = -50.0  # loud frames quieter than this: nothing was recorded


DNSMOS_COLUMNS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")


def item_reasons(f: Features, orig_rate: int, text: str, cfg: FilterConfig,
                 dnsmos: dict | None = None) -> list[tuple[str, str]]:
    """Every rule one clip breaks on its own, as (reason, detail)."""
    ovrl = (dnsmos or {}).get("dnsmos_ovrl", float("nan"))
    rules = [
        (not text.strip(), "empty_transcript", "no text after normalisation"),
        (f.duration < cfg.min_seconds, "too_short", f"{f.duration:.2f} s < {cfg.min_seconds}"),
        (f.duration > cfg.max_seconds, "too_long", f"{f.duration:.2f} s > {cfg.max_seconds}"),
        (f.peak_db < SILENT_DB, "silent", f"loudest frames at {f.peak_db:.0f} dBFS"),
        (f.clipped_fraction > cfg.max_clipped_fraction, "clipped",
         f"{f.clipped_fraction:.4f} of samples at full scale"),
        (f.snr_db < cfg.min_snr_db, "low_snr", f"estimated {f.snr_db:.1f} dB"),
        (f.silence_ratio > cfg.max_silence_ratio, "mostly_silence",
         f"silence ratio {f.silence_ratio:.2f}"),
        (0 < orig_rate < cfg.min_orig_sample_rate, "low_sample_rate",
         f"recorded at {orig_rate} Hz < {cfg.min_orig_sample_rate}"),
        (len(text) > cfg.max_text_chars, "text_too_long",
         f"{len(text)} characters > max_text_chars={cfg.max_text_chars}"),
        (f.chars_per_second > cfg.max_chars_per_second, "too_many_chars_per_second",
         f"{f.chars_per_second:.1f} letters/s > max_chars_per_second={cfg.max_chars_per_second}"),
        (cfg.dnsmos and ovrl < cfg.min_dnsmos, "low_dnsmos",
         f"DNSMOS OVRL {ovrl:.2f} < min_dnsmos={cfg.min_dnsmos}"),
    ]
    return [(reason, detail) for broken, reason, detail in rules if broken]


def rate_outliers(rates: dict[str, tuple[str, float]], mads: float, min_count: int = 5) -> dict:
    """{id: detail} for clips whose characters/second lie more than ``mads`` robust deviations
    from their speaker's median (speakers with fewer than ``min_count`` clips are not judged)."""
    return {i: f"{rate:.1f} chars/s vs speaker median {median:.1f}"
            for i, (rate, median) in consistency.rate_outliers(rates, mads, min_count).items()}


def duplicates(items: list[tuple[str, str, float, list[float]]], similarity: float) -> dict:
    """{id: kept id} for exact copies (same file bytes and span) and near copies (durations
    within 2 % and envelope cosine above ``similarity``); the smaller id is kept.
    ``items``: (id, exact key, duration, fingerprint), sorted by duration for a sliding window."""
    out, exact = {}, {}
    for utt_id, key, _, _ in sorted(items):
        if key in exact:
            out[utt_id] = exact[key]
        else:
            exact[key] = utt_id
    order = sorted((i for i in items if i[0] not in out), key=lambda i: i[2])
    prints = {i[0]: np.asarray(i[3]) for i in order}
    for a, (id_a, _, dur_a, _) in enumerate(order):
        if id_a in out:
            continue
        for id_b, _, dur_b, _ in order[a + 1:]:
            if dur_b > dur_a * 1.02 + 0.01:
                break
            if id_b not in out and float(prints[id_a] @ prints[id_b]) > similarity:
                first, second = sorted((id_a, id_b))
                out[second] = first
    return out


FERTILITY = "fertility.json"  # tokens per word/character, byte-fallback share per tag


def fertility_figures(accepted: list[Utterance], tokenizer) -> dict:
    """kani_adapt.text.fertility's figures for the kept (already normalised) texts, per tag, with
    the gate's problems at its default thresholds (what a LoRA run would stop on)."""
    by_tag: dict[str, list[str]] = {}
    for u in accepted:
        by_tag.setdefault(u.tag or "(none)", []).append(u.text)
    figures = fertility.report(by_tag, tokenizer, frontend.Frontend(enabled=False))
    return {**figures, "problems": fertility.gate(figures)}


def text_frontend(cfg: FilterConfig, tags: Tags | None = None) -> frontend.Frontend:
    """The frontend the data are normalised with (each tag in its language, ``tags``); stored
    beside the dataset, read by training."""
    return frontend.Frontend(languages=languages(tags or {}), numbers=cfg.numbers_to_words)


def _measure(utt: Utterance, work: Path, cfg: FilterConfig, tags: Tags, dnsmos=None) -> dict:
    text = text_frontend(cfg, tags).apply(utt.text, utt.tag, utt.text_override)
    audio, rate = read_clip(work / utt.audio)
    features = measure(audio, rate, text)
    out = {"utt": {**utt.to_dict(), "text": text}, "features": dataclasses.asdict(features)}
    columns = {"snr_db": round(float(features.snr_db), 2)}  # its spread is in the report
    if dnsmos is not None:
        q = dnsmos.score_one(audio, rate)
        columns |= {c: round(float(getattr(q, c.split("_")[1])), 4) for c in DNSMOS_COLUMNS}
    out["columns"] = {utt.id: columns}
    return out


def decide(measured: list[dict], cfg: FilterConfig) -> tuple[list[Utterance], list[dict]]:
    utts = [Utterance.from_dict(m["utt"]) for m in measured]
    feats = {u.id: Features(**m["features"]) for u, m in zip(utts, measured)}
    scores = {u.id: m.get("columns", {}).get(u.id) for u, m in zip(utts, measured)}
    reasons = {u.id: item_reasons(feats[u.id], u.orig_sample_rate, u.text, cfg, scores[u.id])
               for u in utts}
    ok = [u for u in utts if not reasons[u.id]]
    dups = duplicates([(u.id, f"{u.sha256}:{u.start:.2f}:{u.duration:.2f}", u.duration,
                        feats[u.id].fingerprint) for u in ok], cfg.near_duplicate_similarity)
    for utt_id, kept in dups.items():
        reasons[utt_id].append(("duplicate", f"same audio as {kept}"))
    rates = {u.id: (u.speaker, feats[u.id].chars_per_second) for u in ok if u.id not in dups}
    for utt_id, detail in rate_outliers(rates, cfg.rate_outlier_mad).items():
        reasons[utt_id].append(("speaking_rate_outlier", detail))
    accepted = [u for u in utts if not reasons[u.id]]
    rejected = [reject_utt(u, NAME, reasons[u.id][0][0],
                           "; ".join(f"{r}: {d}" for r, d in reasons[u.id])) for u in utts
                if reasons[u.id]]
    return accepted, rejected


class Filter(BaseStage):
    name = section = NAME
    help = "duration, clipping, SNR, silence, speaking rate, sample rate, duplicates, DNSMOS; text"
    columns = ("snr_db", *DNSMOS_COLUMNS)

    def resources(self, cfg) -> Resources:
        return Resources(pool=cfg.filter.dnsmos)  # DNSMOS: its ONNX models load once per worker

    def settings(self, ctx) -> dict:
        return {"cfg": dataclasses.asdict(ctx.cfg.filter), "languages": languages(ctx.cfg.tags)}

    def open(self, ctx) -> None:
        if ctx.cfg.filter.dnsmos:
            from kani_adapt.scorers.quality import DNSMOS
            ctx.state["dnsmos"] = ctx.given.get("dnsmos") or DNSMOS()

    def process_item(self, ctx, utt: Utterance) -> Kept:
        return Kept(extra=_measure(utt, ctx.work, ctx.cfg.filter, ctx.cfg.tags,
                                   ctx.state.get("dnsmos")))

    def decide(self, ctx, items: list, results: dict) -> tuple[list, list[dict]]:
        cfg = ctx.cfg.filter
        accepted, rejected = decide([results[u.id]["extra"] for u in items], cfg)
        frontend.write(stage_dir(ctx.work, NAME), text_frontend(cfg, ctx.cfg.tags),
                       {u.tag for u in accepted})
        tokenizer = ctx.given.get("tokenizer")
        if tokenizer is None and cfg.tokenizer:
            tokenizer = textnorm.load_tokenizer(cfg.tokenizer)
        if tokenizer is not None:
            report = textnorm.coverage([u.text for u in accepted], tokenizer)
            atomic.write_text(stage_dir(ctx.work, NAME) / "coverage.json",
                              json.dumps(report, ensure_ascii=False, indent=1))
            atomic.write_text(stage_dir(ctx.work, NAME) / FERTILITY,
                              json.dumps(fertility_figures(accepted, tokenizer), indent=1))
        return accepted, rejected


STAGE = Filter()
