"""Stage filter: measure each clip, normalise its text, then reject by pure rules.

Per-clip measurements are logged item by item (resumable); the decisions that compare clips with
each other (speaking-rate outliers per speaker, exact and near duplicates) run over all of them
at the end, which is cheap. Writes ``filter/coverage.json`` when a tokenizer is configured.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from data_tools.records import Utterance, reject_utt, stage_dir
from kani_adapt.text import fertility, frontend
from kani_adapt.text.tags import Tags, languages
from kani_adapt.scorers import textnorm
from data_tools.speech import consistency
from data_tools.speech.quality import Features, measure
from data_tools.stages.kit import BaseStage, Kept, Model, Resources, ordered
from kani_adapt.audio import read_clip
from kani_adapt.config.defaults import MAX_CLIP_SECONDS
from kani_adapt.config.wiring import ModelRef
from kani_adapt.core import atomic

NAME = "filter"


@dataclass
class FilterConfig:
    min_seconds: float = 1.0
    max_seconds: float = MAX_CLIP_SECONDS  # pretraining dropped clips above 40 s
    max_clipped_fraction: float = 0.001  # samples at full scale
    min_snr_db: float = 15.0  # estimated from frame energies
    max_silence_ratio: float = 0.6  # fraction of 20 ms frames well below speech level
    min_orig_sample_rate: int = 16000  # upsampled narrow-band audio is rejected
    rate_outlier_mad: float = 4.0  # characters/second further than this many MADs from speaker
    max_chars_per_second: float = 30.0  # absolute ceiling (read speech: ~10-17 letters/s)
    max_text_chars: int = 1000  # per clip; 20 s of very fast speech is ~600
    # DNSMOS (P.808, P.835 OVRL/SIG/BAK) per clip: columns in the dataset and a histogram in the
    # report. Off by default: it costs ~0.5-1 s of CPU per clip.
    dnsmos: bool = False
    # OVRL floor when dnsmos is on. Emilia kept OVRL >= 3.0 for real recordings, but clean
    # espeak-ng speech scores only 2.7-2.9 (noise at 10 dB SNR brings it to ~2.0), so 3.0 would
    # empty the synthetic demo; 2.4 keeps clean synthetic speech and drops audibly noisy clips.
    # Set 3.0 for Emilia's bar on real recordings.
    min_dnsmos: float = 2.4
    near_duplicate_similarity: float = 0.995  # cosine of audio fingerprints (same length)
    # The text frontend (kani_adapt.text.frontend): whether numbers, dates and symbols are
    # spelled out (each utterance in its tag's language: tags.<tag>.language)
    numbers_to_words: bool = True
    tokenizer: ModelRef = ""  # generator checkpoint (dir or hub id) for the coverage report

    RANGES: ClassVar[dict[str, str]] = {  # min_snr_db: a level in dB, may lie below zero
        "min_seconds": ">= 0", "max_seconds": "> 0", "max_clipped_fraction": "[0, 1]",
        "max_silence_ratio": "[0, 1]", "min_orig_sample_rate": ">= 0",
        "rate_outlier_mad": ">= 0", "max_chars_per_second": "> 0", "max_text_chars": "> 0",
        "min_dnsmos": ">= 0", "near_duplicate_similarity": "[0, 1]"}

    def validate(self) -> list[str]:
        return ordered(self, "min_seconds", "max_seconds")
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
    config = FilterConfig
    # the generator's tokenizer, for the coverage report ("": none)
    models = (Model("filter.tokenizer", "tokenizer", given="tokenizer",
                    files=("tokenizer_config.json",)),)
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
