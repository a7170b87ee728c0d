"""The dataset report: hours kept per speaker and tag, hours rejected per reason, tag and
speaker, coverage; the histograms (CER, DNSMOS, speaking rate) are drawn by ``histograms``."""
from __future__ import annotations

from collections import Counter, defaultdict

from data_tools import inventory, throughput
from kani_adapt.dataset import DURATION, ENCODED_LEN, SPEAKER, TAG

# Below this many frames per second of audio after repeat-dropping (NanoCodec's rate is 12.5),
# most frames repeat the one before: a broken or collapsing codec, or silence, not speech.
MIN_FRAMES_PER_SECOND = 8.0


def rejected_seconds(rejected: list[dict], durations: dict[str, float]) -> list[float]:
    """Seconds of each rejection: its own ``seconds`` (a dropped stretch of a recording), else
    the duration of the item it rejected (0 where unknown: a file that could not be read)."""
    return [float(r.get("seconds", durations.get(r["id"], 0.0)) or 0.0) for r in rejected]


def _rejected_hours(rejected: list[dict], seconds: list[float], tags: dict[str, tuple]) -> dict:
    by = {"reason": defaultdict(float), "tag": defaultdict(float), "speaker": defaultdict(float)}
    for r, s in zip(rejected, seconds):
        tag, speaker = tags.get(r["id"], ("?", "?"))
        by["reason"][f"{r['stage']}: {r['reason']}"] += s / 3600
        by["tag"][tag] += s / 3600
        by["speaker"][speaker] += s / 3600
    return {k: {n: round(h, 4) for n, h in sorted(v.items())} for k, v in by.items()}


def frame_rates(rows: list[dict], kept_frames: list[int]) -> dict:
    """Frames kept per second of audio after repeat-dropping, overall, per tag and per speaker,
    and the groups below MIN_FRAMES_PER_SECOND."""
    frames, seconds = defaultdict(float), defaultdict(float)
    for row, n in zip(rows, kept_frames):
        for key in ("all", f"tag:{row[TAG]}", f"speaker:{row[SPEAKER]}"):
            frames[key] += n
            seconds[key] += row[DURATION]
    rate = {k: round(frames[k] / seconds[k], 2) if seconds[k] else 0.0 for k in frames}
    return {
        "overall": rate.get("all", 0.0),
        "per_tag": {k[4:]: v for k, v in sorted(rate.items()) if k.startswith("tag:")},
        "per_speaker": {k[8:]: v for k, v in sorted(rate.items()) if k.startswith("speaker:")},
        "low": sorted(k for k, v in rate.items() if k != "all" and v < MIN_FRAMES_PER_SECOND),
    }


def summarise(rows: list[dict], rejected: list[dict], extras: dict,
              seconds: list[float] | None = None, owners: dict[str, tuple] | None = None,
              kept_frames: list[int] | None = None) -> dict:
    """``rows``: dataset rows (kani_adapt.dataset); ``rejected``: rejection records;
    ``seconds``: each rejection's length; ``owners``: {id: (tag, speaker)} of rejected ids;
    ``kept_frames``: each row's codec frames after repeat-dropping."""
    hours_speaker, hours_tag, speakers_tag = defaultdict(float), defaultdict(float), defaultdict(set)
    for row in rows:
        hours_speaker[row[SPEAKER]] += row[DURATION] / 3600
        hours_tag[row[TAG]] += row[DURATION] / 3600
        speakers_tag[row[TAG]].add(row[SPEAKER])
    by_reason = Counter((r["stage"], r["reason"]) for r in rejected)
    return {
        "clips": len(rows),
        "hours": round(sum(r[DURATION] for r in rows) / 3600, 4),
        "hours_per_speaker": {k: round(v, 4) for k, v in sorted(hours_speaker.items())},
        "hours_per_tag": {k: round(v, 4) for k, v in sorted(hours_tag.items())},
        "speakers_per_tag": {k: len(v) for k, v in sorted(speakers_tag.items())},
        "rejected": len(rejected),
        "rejected_by_reason": [{"stage": s, "reason": r, "count": n}
                               for (s, r), n in sorted(by_reason.items())],
        "rejected_hours": _rejected_hours(rejected, seconds or [0.0] * len(rejected),
                                          owners or {}),
        "frames_per_second": frame_rates(rows, kept_frames if kept_frames is not None
                                         else [r[ENCODED_LEN] for r in rows]),
        **extras,
    }


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def rate_of(fps: dict, group: str) -> float:
    """The rate of a group named in ``fps["low"]`` (``tag:de``, ``speaker:anna``)."""
    kind, _, name = group.partition(":")
    return fps[f"per_{kind}"][name]


def _frames_section(fps: dict | None) -> list[str]:
    if not fps:
        return []
    lines = ["", "## Codec frames per second (after repeat-dropping)", "",
             f"{fps['overall']:.2f} frames/s overall (NanoCodec encodes 12.5; speech keeps "
             "nearly all of them)."]
    for group in fps["low"]:
        kind, _, name = group.partition(":")
        lines += ["", f"**Warning:** {kind} {name or '(none)'} keeps only "
                      f"{rate_of(fps, group):.2f} frames/s (< {MIN_FRAMES_PER_SECOND:g}): "
                      "most frames repeat the one before, from a broken or collapsing codec or "
                      "silent audio; listen to a few clips and check the codec."]
    lines += [""] + _table(["tag", "frames/s"], [[k or "(none)", f"{v:.2f}"]
                                                 for k, v in fps["per_tag"].items()])
    lines += [""] + _table(["speaker", "frames/s"], [[k, f"{v:.2f}"]
                                                     for k, v in fps["per_speaker"].items()])
    return lines


def markdown(summary: dict, pictures: list[str] = ()) -> str:
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
    lines += _frames_section(summary.get("frames_per_second"))
    lines += ["", "## Rejections by reason", ""]
    lines += _table(["stage", "reason", "count"],
                    [[r["stage"], r["reason"], r["count"]] for r in summary["rejected_by_reason"]])
    for key in ("reason", "tag", "speaker"):
        hours = summary.get("rejected_hours", {}).get(key, {})
        lines += ["", f"## Hours rejected per {key}", ""]
        lines += _table([key, "hours"], [[k or "(none)", f"{v:.4f}"] for k, v in hours.items()])
    if pictures:
        lines += ["", "## Distributions", ""] + [line for p in pictures for line in (p, "")]
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
    lines += inventory.markdown(summary.get("inputs") or {})
    lines += throughput.section(summary.get("throughput", []))
    lines += ["", "## Options", ""] + [f"- {k}: {v}" for k, v in summary.get("options", {}).items()]
    return "\n".join(lines) + "\n"
