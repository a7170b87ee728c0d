"""Summaries (per checkpoint, tag and speaker, with clustered intervals), paired comparisons,
the forgetting line, one-line verdicts, and the files: eval.json, eval.md, utterances.parquet."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from kani_adapt.core import atomic
from kani_adapt.eval import stats
from kani_adapt.scorers.registry import headline, higher_is_better
from kani_adapt.core.untrusted import md, md_code


def _interval(df, metric, resamples, clusters="speaker") -> dict:
    unit = "speaker" if clusters == "speaker" else "utterance"
    if metric not in df or df[metric].isna().all():
        return stats.plain(stats.NAN_INTERVAL, unit)
    return stats.plain(stats.clustered_bootstrap(df[metric].to_numpy(float),
                                                 df[clusters].to_numpy(str), resamples), unit)


def summarise(df, metrics: list[str], resamples: int) -> dict:
    """checkpoint -> metric -> {all, tags: {tag: ...}, speakers: {speaker: ...}}.

    Overall and per-tag intervals resample speakers; a single speaker's interval resamples
    its utterances (there is no other cluster to draw). Over one cluster there is no interval:
    the mean with "one speaker: no interval" (``stats.plain``)."""
    out: dict = {}
    for name, part in df.groupby("checkpoint", sort=False):
        per = out.setdefault(name, {})
        part = part.assign(utt=part["item"].astype(str) + "/" + part["sample"].astype(str))
        for metric in metrics:
            per[metric] = {
                "all": _interval(part, metric, resamples),
                "tags": {t: _interval(g, metric, resamples) for t, g in part.groupby("tag")},
                "speakers": {s: _interval(g, metric, resamples, "utt") for s, g in part.groupby("speaker")},
            }
    return out


def compare(df, candidate: str, other: str, metrics: list[str], resamples: int) -> dict:
    """Paired (same item and sample) differences candidate - other, all items and base items."""
    a = df[df.checkpoint == candidate].set_index(["item", "sample"])
    b = df[df.checkpoint == other].set_index(["item", "sample"])
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    out = {"all": {}, "forgetting": {}}
    for metric in metrics:
        if metric not in a or a[metric].isna().all() or b[metric].isna().all():
            continue
        for key, mask in (("all", np.ones(len(a), bool)), ("forgetting", a["base"].to_numpy(bool))):
            if mask.any():
                p = stats.paired(a[metric].to_numpy(float)[mask], b[metric].to_numpy(float)[mask],
                                 a["speaker"].to_numpy(str)[mask], higher_is_better()[metric], resamples)
                out[key][metric] = {"diff": stats.plain(p.diff),
                                    "win_rate": stats.plain(p.win_rate)}
    return out


def _fmt(i: dict, digits: int = 3) -> str:
    return stats.shown(i, digits)


def _direction(metric: str, diff: dict) -> str | None:
    """better, worse or same by the interval of the difference; None where there is no
    interval to tell (one speaker)."""
    if diff.get("note"):
        return None
    if not stats.excludes_zero(diff):
        return "same"
    good = (diff["mean"] > 0) == higher_is_better()[metric]
    return "better" if good else "worse"


def _signed(diff: dict) -> str:
    """A difference without an interval: "+0.050 (one speaker: no interval)"."""
    if diff.get("mean") is None:
        return diff.get("note") or stats.NOT_MEASURED
    return f"{diff['mean']:+.3f} ({diff.get('note') or stats.no_interval()})"


def verdict(name: str, summary: dict, comparisons: dict, anchors: dict | None = None,
            recordings: dict | None = None) -> str:
    """One line: the key metrics (similarity beside its ceiling and floor), then for each
    comparison better/worse/same on the first key metric, forgetting, and the gap to the
    ``recordings`` anchor (the eval set's own recordings through the same scorers)."""
    key_metrics = headline()  # the scorers' key metrics, in the registry's order
    parts = [f"{m} {summary[m]['all']['mean']:.3f}" for m in key_metrics
             if m in summary and summary[m]["all"]["n"]]
    anchor = (anchors or {}).get("similarity")
    if anchor and "similarity" in summary and summary["similarity"]["all"]["n"]:
        i = next(k for k, p in enumerate(parts) if p.startswith("similarity"))
        parts[i] += f" ({_anchor_words(anchor, short=True)})"
    line = f"{name}: " + ", ".join(parts)
    for other, comp in comparisons.items():
        key = next((m for m in key_metrics if m in comp["all"]), None)
        if key is None:
            continue
        c = comp["all"][key]
        told = _direction(key, c["diff"])
        line += (f"; vs {other}: {told} on {key} (win rate {c['win_rate']['mean']:.2f})" if told
                 else f"; vs {other}: {key} {_signed(c['diff'])}")
        f = comp["forgetting"].get(key)
        if f is not None:
            told = _direction(key, f["diff"])
            line += ("; forgetting" if told == "worse" else "; no forgetting seen" if told
                     else f"; base items: {key} {_signed(f['diff'])}")
    if recordings:
        from kani_adapt.eval.protocol import anchor_line

        gap = anchor_line(summary, recordings)
        line += f"; {gap}" if gap else ""
    return line


def coverage(items, known_tags=()) -> dict:
    """Which tags and speakers the items cover (items per each), and the training tags they miss."""
    tags, speakers = {}, {}
    for it in items:
        tags[it.tag or ""] = tags.get(it.tag or "", 0) + 1
        speakers[it.speaker or ""] = speakers.get(it.speaker or "", 0) + 1
    return {"tags": dict(sorted(tags.items())), "speakers": dict(sorted(speakers.items())),
            "tags_not_evaluated": sorted(set(known_tags) - set(tags))}


def coverage_lines(cov: dict) -> list[str]:
    if not cov:
        return []
    lines = ["## What was evaluated", "",
             "- tags: " + ", ".join(f"{md(t or '(none)')} ({n} items)" for t, n in cov["tags"].items()),
             "- speakers: " + ", ".join(f"{md(s or '(none)')} ({n} items)"
                                        for s, n in cov["speakers"].items())]
    if cov.get("tags_not_evaluated"):
        lines.append("- **not evaluated** (trained, but no held-out speaker has them; a tag "
                     "with one speaker keeps it for training): "
                     + ", ".join(map(md, cov["tags_not_evaluated"])) + "; give such a tag a "
                     "second speaker, or name held-out speakers in eval.dataset.speakers")
    if len(cov["speakers"]) == 1:
        lines.append("- one speaker only: no interval (resampling one speaker only ever draws "
                     "that speaker, so the figures say nothing about other voices); evaluate "
                     "two or more")
    return lines + [""]


CEILING_MISSING = "needs two reference clips of one speaker"
FLOOR_MISSING = "one speaker: needs references of two speakers"


def _anchor_words(a: dict, rescales: bool = True, short: bool = False) -> str:
    """"same-speaker ceiling 0.612, different-speaker floor 0.105" (``short``: "ceiling 0.612,
    floor 0.105"), with words where one is missing or (``rescales``: the anchors of
    similarity_norm) they are inverted."""
    from kani_adapt.eval.protocol import rescale_problem

    def part(value, label, why):
        return f"{label} {value:.3f}" if _finite(value) else f"{label} not measured ({why})"
    words = (part(a.get("ceiling"), "ceiling" if short else "same-speaker ceiling",
                  CEILING_MISSING) + ", " +
             part(a.get("floor"), "floor" if short else "different-speaker floor", FLOOR_MISSING))
    problem = rescale_problem(a)
    if rescales and problem and _finite(a.get("ceiling")) and _finite(a.get("floor")):
        words += f"; {problem}"
    return words


def anchor_record(name: str, a: dict) -> dict:
    """The anchors as eval.json keeps them: a ``note`` in words where a value is missing (it is
    null there) or similarity cannot be rescaled."""
    from kani_adapt.eval.protocol import rescale_problem

    notes = [f"{label} not measured: {why}" for key, label, why in (
        ("ceiling", "ceiling", CEILING_MISSING), ("floor", "floor", FLOOR_MISSING))
        if not _finite(a.get(key))]
    if name == "similarity" and not notes and rescale_problem(a):
        notes.append(rescale_problem(a))
    return {**a, **({"note": "; ".join(notes)} if notes else {})}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def anchor_line(name: str, a: dict) -> str:
    """The similarity anchors, with why one is missing (and why similarity_norm is)."""
    return f"- {md(name)}: {_anchor_words(a, rescales=name == 'similarity')}"


def write_markdown(path: Path, result: dict) -> None:
    lines = ["# Evaluation", "", f"Eval set: {md_code(result['eval_set'])}, {result['items']} items x "
             f"{result['samples']} samples. Intervals: 95 % bootstrap over speakers (none where one "
             "speaker, or one utterance, is all there is).", ""]
    lines += coverage_lines(result.get("coverage") or {})
    if result.get("anchors"):
        lines += ["## Similarity anchors (reference clips)", ""]
        for name, a in result["anchors"].items():
            lines.append(anchor_line(name, a))
        lines.append("")
    for name, summary in result["summary"].items():
        lines += [f"## {md(name)}", "", "| metric | all | " + " | ".join(
            f"tag {md(t)}" for t in next(iter(summary.values()))["tags"]) + " |"]
        lines.append("|" + "---|" * (2 + len(next(iter(summary.values()))["tags"])))
        for metric, s in summary.items():
            lines.append(f"| {metric} | {_fmt(s['all'])} | " + " | ".join(_fmt(v) for v in s["tags"].values()) + " |")
        lines += ["", "Per speaker:", ""]
        for metric, s in summary.items():
            lines.append(f"- {metric}: " + ", ".join(f"{md(k)} {_fmt(v, 2)}" for k, v in s["speakers"].items()))
        lines.append("")
    for pair, comp in result["comparisons"].items():
        lines += [f"## {md(pair)} (paired, candidate - other)", "", "| metric | difference | win rate | forgetting (base items) |",
                  "|---|---|---|---|"]
        for metric, c in comp["all"].items():
            f = comp["forgetting"].get(metric)
            lines.append(f"| {metric} | {_fmt(c['diff'])} | {_fmt(c['win_rate'], 2)} | "
                         f"{_fmt(f['diff']) if f else 'no base items'} |")
        lines.append("")
    if result.get("prompt_length"):
        lines += ["## By prompt length (text tokens)", "", "| checkpoint | tag | tokens | n | "
                  "failure | cer |", "|---|---|---|---|---|---|"]
        for name, tags in result["prompt_length"].items():
            for tag, buckets in tags.items():
                for bucket, v in buckets.items():
                    cer = f"{v['cer']:.3f}" if "cer" in v else "n/a"
                    lines.append(f"| {md(name)} | {md(tag) if tag else '-'} | {bucket} | {v['n']} | "
                                 f"{_fmt_mean(v, 'failure', 2)} | {cer} |")
        lines.append("")
    probes = result.get("short_probes") or {}
    if probes.get("by_checkpoint") or probes.get("without"):
        lines += ["## Short probes (1-3 words, built in; apart from the figures above)", "",
                  "| checkpoint | tag | n | failure | cer | onset entropy |", "|---|---|---|---|---|---|"]
        for name, tags in probes.get("by_checkpoint", {}).items():
            for tag, v in tags.items():
                num = lambda m, d: "n/a" if v.get(m) is None or math.isnan(v[m]) else f"{v[m]:.{d}f}"  # noqa: E731
                lines.append(f"| {md(name)} | {md(tag) if tag else '-'} | {v['n']} | {num('failure', 2)} | "
                             f"{num('cer', 3)} | {num('onset_entropy', 2)} |")
        if probes.get("without"):
            lines.append(f"\nNo probes for tag(s) {', '.join(md(t) if t else '-' for t in probes['without'])}: "
                         "no probe prompts for their language, or no voice to speak them in.")
        lines.append("")
    from kani_adapt.eval.judges import lines as judge_lines

    lines += judge_lines(result)
    lines += protocol_lines(result.get("protocol") or {})
    lines += ["## Verdict", ""] + [f"- {md(v)}" for v in result["verdicts"]] + [""]
    atomic.write_text(path, "\n".join(lines))


def protocol_lines(section: dict) -> list[str]:
    """The msbench protocol's counts: scored and empty-reference utterances, S/D/I, the
    recogniser gap, and the cells too thin to read a trend from."""
    if not section:
        return []
    lines = ["## Protocol: msbench (make-speech-benchmark v2)", "",
             "Texts: NFC, numbers spelled, lower case, punctuation list removed, apostrophes and "
             "diacritics kept. Audio: mono, 16 kHz (soxr HQ), Silero VAD trim +-50 ms, peak "
             "-1 dBFS. Whisper greedy, no repetition penalty, short-form, language forced. "
             "Corpus WER = sum(S+D+I) / sum(reference words); catastrophic: WER > 0.5.", "",
             "| checkpoint | scored | empty references | S | D | I | speakers | recogniser gap "
             "(Whisper - CTC corpus WER) | cells under 30 speakers |", "|---|---|---|---|---|---|---|---|---|"]
    for name, c in section.get("checkpoints", {}).items():
        gap = c.get("recogniser_gap")
        gap_text = (f"{gap['gap']:+.3f} ({gap['whisper_corpus_wer']:.3f} vs {gap['ctc_corpus_wer']:.3f})"
                    if gap else "not measured: no second recogniser (scorers.ctc_asr)")
        small = ", ".join(md(t) for t in c["small_cells"]) or "none"
        lines.append(f"| {md(name)} | {c['n_scored']} | {c['n_empty_ref']} | {c['subs']} | {c['dels']} | "
                     f"{c['ins']} | {c['speakers']} | {gap_text} | {small} |")
    return lines + ["", "Cells under 30 speakers are flagged: do not read a trend off them.", ""]


def _fmt_mean(v: dict, metric: str, digits: int) -> str:
    return f"{v[metric]:.{digits}f}" if _finite(v.get(metric)) else stats.NOT_MEASURED


def write_json(path: Path, result: dict) -> None:
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x
    atomic.write_text(path, json.dumps(clean(result), indent=1, ensure_ascii=False))
