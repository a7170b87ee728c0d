"""The field's eval protocol on top of the per-utterance rows (make-speech-benchmark's figures).

- corpus CER and WER: all edits over all reference units, per checkpoint, tag and speaker,
  beside the per-utterance mean (``cer``);
- the catastrophic rate: the share of utterances above 50 % WER (a row metric of the ASR
  scorer, summarised like the others);
- similarity rescaled between the recordings' different-speaker floor (0) and same-speaker
  ceiling (1), both shown;
- the ``recordings`` anchor: the eval set's own reference audio through the same scorers, so
  each number can be read against what real speech gets, and the verdict compares the adapted
  checkpoint with its base *and* with that anchor.
"""
from __future__ import annotations

import math

from kani_adapt.eval import stats
from kani_adapt.scorers.registry import anchored, corpus_rates as corpus_columns, higher_is_better


def rescale_problem(anchor: dict) -> str:
    """Why similarity cannot be rescaled between these anchors ("" when it can)."""
    ceiling, floor = anchor.get("ceiling"), anchor.get("floor")
    if ceiling is None or floor is None or math.isnan(ceiling) or math.isnan(floor):
        return "no similarity_norm: it needs both anchors"
    if ceiling <= floor:
        return ("no similarity_norm: the same-speaker ceiling is not above the different-speaker "
                "floor (the speaker embedder does not tell these recordings' voices apart)")
    return ""


def add_derived(df, anchors: dict):
    """``similarity_norm`` = (similarity - floor) / (ceiling - floor), from the anchors; the
    accent shift (toward the recordings of each tag: scorers/accent.py); ``per_relative`` =
    each clip's PER over the median PER of its tag's recordings. ``similarity_norm`` is empty
    (the report says why) where the anchors cannot rescale."""
    from kani_adapt.scorers.accent import shift

    a = anchors.get("similarity")
    if a is not None and "similarity" in df:
        rescalable = not rescale_problem(a)
        df["similarity_norm"] = ((df["similarity"] - a["floor"]) / (a["ceiling"] - a["floor"])
                                 if rescalable else float("nan"))
    df = shift(df)
    if "per" in df and "checkpoint" in df:
        medians = df[df["checkpoint"] == "recordings"].groupby("tag")["per"].median()
        median = df["tag"].map(medians).astype(float)
        df["per_relative"] = df["per"] / median.where(median > 0)
    return df


def _ratio(part, metric: str, resamples: int, clusters: str = "speaker") -> dict:
    edits, units = corpus_columns()[metric]
    unit = "speaker" if clusters == "speaker" else "utterance"
    if edits not in part or part[edits].isna().all():
        return stats.plain(stats.NAN_INTERVAL, unit)
    return stats.plain(stats.clustered_ratio(part[edits].to_numpy(float),
                                             part[units].to_numpy(float),
                                             part[clusters].to_numpy(str), resamples), unit)


def corpus_rates(df, resamples: int) -> dict:
    """checkpoint -> corpus_cer/corpus_wer -> {all, tags, speakers} (as ``report.summarise``)."""
    out: dict = {}
    for name, part in df.groupby("checkpoint", sort=False):
        part = part.assign(utt=part["item"].astype(str) + "/" + part["sample"].astype(str))
        for metric, (edits, _) in corpus_columns().items():
            if edits not in part:
                continue
            out.setdefault(name, {})[metric] = {
                "all": _ratio(part, metric, resamples),
                "tags": {t: _ratio(g, metric, resamples) for t, g in part.groupby("tag")},
                "speakers": {s: _ratio(g, metric, resamples, "utt")
                             for s, g in part.groupby("speaker")}}
    return out


# Prompt-length buckets in text tokens: upstream (gepard-train MODEL_GUIDE §5.3) measured 60-96 %
# failures at 6 tokens or fewer, falling over 7-12, below 5 % from 13.
BUCKETS = ((0, 6, "<=6"), (7, 12, "7-12"), (13, 10**9, ">=13"))


def bucket_of(tokens: int) -> str:
    return next(name for low, high, name in BUCKETS if low <= tokens <= high)


def by_prompt_length(df) -> dict:
    """checkpoint -> tag -> bucket -> {n, failure, cer, catastrophic}: the failure rate and CER
    of generated utterances by prompt length (anchor rows have no prompt and are left out)."""
    if "prompt_tokens" not in df:
        return {}
    gen = df[df["prompt_tokens"].notna()]
    out: dict = {}
    for (name, tag), part in gen.groupby(["checkpoint", "tag"], sort=False):
        buckets = part["prompt_tokens"].astype(int).map(bucket_of)
        for bucket, rows in part.groupby(buckets, sort=False):
            out.setdefault(name, {}).setdefault(tag, {})[bucket] = {
                "n": int(len(rows)),
                **{m: float(rows[m].mean()) for m in ("failure", "cer", "catastrophic")
                   if m in rows and rows[m].notna().any()}}
    return out


def anchor_line(summary: dict, anchor: dict) -> str:
    """'vs recordings: cer 0.31 vs 0.05, ...': each metric the registry compares with the
    recordings (``Metric.anchor``) beside the anchor's."""
    parts = []
    for m in anchored():
        mine, theirs = summary.get(m, {}).get("all", {}), anchor.get(m, {}).get("all", {})
        if mine.get("n") and theirs.get("n") and not math.isnan(theirs["mean"]):
            gap = mine["mean"] - theirs["mean"]
            worse = (gap < 0) if higher_is_better().get(m, True) else (gap > 0)
            parts.append(f"{m} {mine['mean']:.3f} vs {theirs['mean']:.3f}"
                         + (" (worse)" if worse and abs(gap) > 1e-9 else ""))
    return "vs recordings: " + ", ".join(parts) if parts else ""


def _count(part, column: str) -> int:
    return int(part[column].fillna(0).sum()) if column in part else 0


def msbench_section(df) -> dict:
    """checkpoint -> what upstream's protocol reports beside the figures: the scored and the
    empty-reference utterances (counted apart), the word S/D/I totals, the speakers behind each
    tag with the cells under 30 speakers flagged, and the gap between the two recogniser
    families (Whisper's corpus WER minus the CTC recogniser's) where both ran."""
    from kani_adapt.scorers.msbench import SMALL_CELL_SPEAKERS

    out: dict = {}
    for name, part in df.groupby("checkpoint", sort=False):
        empty = _count(part, "empty_reference")
        cells = {tag: int(g["speaker"].nunique()) for tag, g in part.groupby("tag")}
        entry = {"n_scored": int(part["wer"].notna().sum()) if "wer" in part else 0,
                 "n_empty_ref": empty,
                 "subs": _count(part, "word_subs"), "dels": _count(part, "word_dels"),
                 "ins": _count(part, "word_ins"),
                 "speakers": int(part["speaker"].nunique()), "tag_speakers": cells,
                 "small_cells": sorted(t for t, n in cells.items() if n < SMALL_CELL_SPEAKERS)}
        if int(part["speaker"].nunique()) < SMALL_CELL_SPEAKERS:
            entry["small_cells"] = ["all", *entry["small_cells"]]
        gap = _recogniser_gap(part)
        if gap is not None:
            entry["recogniser_gap"] = gap
        out[name] = entry
    return out


def _recogniser_gap(part) -> dict | None:
    if "ctc_word_edits" not in part or part["ctc_word_edits"].isna().all() or "word_edits" not in part:
        return None
    both = part[part["word_edits"].notna() & part["ctc_word_edits"].notna() & part["ref_words"].notna()]
    if not len(both) or both["ref_words"].sum() <= 0:
        return None
    whisper = float(both["word_edits"].sum() / both["ref_words"].sum())
    ctc = float(both["ctc_word_edits"].sum() / both["ctc_ref_words"].sum())
    return {"whisper_corpus_wer": whisper, "ctc_corpus_wer": ctc, "gap": whisper - ctc,
            "n": int(len(both))}
