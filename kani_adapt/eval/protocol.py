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
    column is empty (and the report says why) where the anchors cannot rescale."""
    a = anchors.get("similarity")
    if a is None or "similarity" not in df:
        return df
    if rescale_problem(a):
        df["similarity_norm"] = float("nan")
    else:
        df["similarity_norm"] = (df["similarity"] - a["floor"]) / (a["ceiling"] - a["floor"])
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
