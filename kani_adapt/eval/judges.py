"""The accent judges in the report: the same-voice comparison and the figures not measured.

Accent and voice are entangled: a clip in the target speaker's voice sits near that speaker's
recordings whatever its accent. The eval therefore gives every compared checkpoint the same
speaker embedding per item (``run_eval``; each row keeps its fingerprint, ``voice``), and this
comparison pairs a candidate's and its base's utterances of the same item and sample *only
where both spoke with the same voice*: the difference in accent posterior and accent shift is
then the models', not the voices'. The recordings row (the eval set's real target-accent speech
through the same judges) says what real speech gets.
"""
from __future__ import annotations

import math

from kani_adapt.core.untrusted import md
from kani_adapt.eval import stats

ACCENT_METRICS = ("accent_posterior", "accent_shift")
RECORDINGS = "recordings"


def _interval(part, metric: str, resamples: int) -> dict:
    if metric not in part or part[metric].isna().all():
        return stats.NAN_INTERVAL.as_dict()
    return stats.clustered_bootstrap(part[metric].to_numpy(float), part["speaker"].to_numpy(str),
                                     resamples).as_dict()


def same_voice(df, candidate: str, other: str, resamples: int) -> dict:
    """{pairs, unmatched, metrics: {metric: {candidate, other, recordings, diff, win_rate}}} over
    the utterances both checkpoints spoke with the same voice; {} without an accent judge."""
    metrics = [m for m in ACCENT_METRICS if m in df and df[m].notna().any()]
    if not metrics or "voice" not in df:
        return {}
    a = df[df.checkpoint == candidate].set_index(["item", "sample"])
    b = df[df.checkpoint == other].set_index(["item", "sample"])
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    same = (a["voice"].to_numpy(str) == b["voice"].to_numpy(str)) & (a["voice"].to_numpy(str) != "")
    a, b = a[same], b[same]
    recordings = df[df.checkpoint == RECORDINGS]
    out = {"pairs": int(same.sum()), "unmatched": int((~same).sum()), "metrics": {}}
    for metric in metrics:
        p = stats.paired(a[metric].to_numpy(float), b[metric].to_numpy(float),
                         a["speaker"].to_numpy(str), True, resamples)
        out["metrics"][metric] = {"candidate": _interval(a, metric, resamples),
                                  "other": _interval(b, metric, resamples),
                                  "recordings": _interval(recordings, metric, resamples),
                                  "diff": p.diff.as_dict(), "win_rate": p.win_rate.as_dict()}
    return out


def not_measured(df) -> dict[str, int]:
    """Each distinct "not measured: ..." reason a judge gave, with how many rows it covers."""
    out: dict[str, int] = {}
    for column in [c for c in df.columns if c.endswith("_reason")]:
        for reason, n in df[column].dropna().astype(str).value_counts().items():
            if "not measured" in reason:
                out[reason] = out.get(reason, 0) + int(n)
    return dict(sorted(out.items()))


def _fmt(i: dict) -> str:
    if not i.get("n") or i.get("mean") is None or math.isnan(i["mean"]):
        return "n/a"
    return f"{i['mean']:.3f} [{i['low']:.3f}, {i['high']:.3f}]"


def lines(result: dict) -> list[str]:
    """eval.md's same-voice section and its not-measured lines."""
    out = []
    for pair, comp in (result.get("same_voice") or {}).items():
        candidate, other = pair.split(" vs ", 1)
        out += [f"## Accent, same voice: {md(pair)}", "",
                f"Both spoke each item with the same speaker embedding and text ({comp['pairs']} "
                f"pairs; {comp['unmatched']} left out whose voices differed). Intervals: 95 % "
                "bootstrap over speakers.", "",
                f"| judge | {md(candidate)} | {md(other)} | difference ({md(candidate)} - {md(other)}) "
                "| win rate | recordings |", "|---|---|---|---|---|---|"]
        for metric, m in comp["metrics"].items():
            out.append(f"| {metric} | {_fmt(m['candidate'])} | {_fmt(m['other'])} | {_fmt(m['diff'])} | "
                       f"{_fmt(m['win_rate'])} | {_fmt(m['recordings'])} |")
        out.append("")
    if result.get("not_measured"):
        out += ["## Not measured", ""]
        out += [f"- {md(reason)} ({n} clips)" for reason, n in result["not_measured"].items()]
        out.append("")
    return out
