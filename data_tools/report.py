"""The dataset report: hours per speaker and tag, rejections by stage and reason, coverage."""
from __future__ import annotations

from collections import Counter, defaultdict


def summarise(rows: list[dict], rejected: list[dict], extras: dict) -> dict:
    """``rows``: dicts with speaker, tag, duration; ``rejected``: rejection records."""
    hours_speaker, hours_tag, speakers_tag = defaultdict(float), defaultdict(float), defaultdict(set)
    for row in rows:
        hours_speaker[row["speaker"]] += row["duration"] / 3600
        hours_tag[row["tag"]] += row["duration"] / 3600
        speakers_tag[row["tag"]].add(row["speaker"])
    by_reason = Counter((r["stage"], r["reason"]) for r in rejected)
    return {
        "clips": len(rows),
        "hours": round(sum(r["duration"] for r in rows) / 3600, 4),
        "hours_per_speaker": {k: round(v, 4) for k, v in sorted(hours_speaker.items())},
        "hours_per_tag": {k: round(v, 4) for k, v in sorted(hours_tag.items())},
        "speakers_per_tag": {k: len(v) for k, v in sorted(speakers_tag.items())},
        "rejected": len(rejected),
        "rejected_by_reason": [{"stage": s, "reason": r, "count": n}
                               for (s, r), n in sorted(by_reason.items())],
        **extras,
    }


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def markdown(summary: dict) -> str:
    lines = ["# Dataset report", "",
             f"{summary['clips']} clips, {summary['hours']:.3f} hours; "
             f"{summary['rejected']} items rejected (see rejected.jsonl).", "",
             "## Hours per speaker", ""]
    lines += _table(["speaker", "hours"], [[k, f"{v:.4f}"] for k, v in
                                           summary["hours_per_speaker"].items()])
    lines += ["", "## Hours per tag", ""]
    lines += _table(["tag", "hours", "speakers"],
                    [[k or "(none)", f"{v:.4f}", summary["speakers_per_tag"][k]]
                     for k, v in summary["hours_per_tag"].items()])
    lines += ["", "## Rejections by reason", ""]
    lines += _table(["stage", "reason", "count"],
                    [[r["stage"], r["reason"], r["count"]] for r in summary["rejected_by_reason"]])
    cov = summary.get("coverage")
    lines += ["", "## Tokenizer coverage", ""]
    if cov:
        lines += [f"{cov['tokens_per_character']} tokens per character; "
                  f"unknown characters: {''.join(cov['unknown']) or 'none'}; "
                  f"byte-fallback characters: {''.join(cov['byte_fallback']) or 'none'}."]
    else:
        lines += ["Not measured (set filter.tokenizer to a generator checkpoint)."]
    spk = summary.get("speaker_embeddings", {})
    if spk:
        lines += ["", "## Speaker embeddings", ""]
        lines += _table(["speaker", "clips", "min cosine to speaker mean"],
                        [[k, v["clips"], v["min_cosine_to_mean"]] for k, v in spk.items()])
    lines += ["", "## Options", ""] + [f"- {k}: {v}" for k, v in summary.get("options", {}).items()]
    return "\n".join(lines) + "\n"
