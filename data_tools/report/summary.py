"""The dataset report: hours kept per speaker and tag, hours rejected per reason, tag and
speaker, coverage; the histograms (CER, DNSMOS, speaking rate) are drawn by ``histograms``."""
from __future__ import annotations

from collections import Counter, defaultdict

from data_tools.inputs import inventory
from data_tools.report import throughput
from kani_adapt.dataset import DURATION, ENCODED_LEN, SPEAKER, TAG
from kani_adapt.core.untrusted import md, md_table

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
        if "speaker" in r:  # the record says whose it was (from its source and folder)
            tag, speaker = r.get("tag", ""), r["speaker"]
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
    given = extras.get("input_totals") or {}
    for speaker in given.get("hours_per_speaker", {}):  # a speaker who lost every clip: 0
        hours_speaker[speaker] += 0.0
    for tag in given.get("hours_per_tag", {}):
        hours_tag[tag] += 0.0
        speakers_tag[tag] |= set()
    kept = sum(r[DURATION] for r in rows) / 3600
    return {
        "clips": len(rows),
        "hours": round(kept, 4),
        "input_hours": given.get("hours"),
        "kept_share": round(kept / given["hours"], 4) if given.get("hours") else None,
        "hours_per_speaker": {k: round(v, 4) for k, v in sorted(hours_speaker.items())},
        "hours_per_tag": {k: round(v, 4) for k, v in sorted(hours_tag.items())},
        "speakers_per_tag": {k: len(v) for k, v in sorted(speakers_tag.items())},
        "rejected": len(rejected),
        "rejected_total_hours": round(sum(seconds or []) / 3600, 4),
        "rejected_by_reason": [{"stage": s, "reason": r, "count": n}
                               for (s, r), n in sorted(by_reason.items())],
        "rejected_hours": _rejected_hours(rejected, seconds or [0.0] * len(rejected),
                                          owners or {}),
        "frames_per_second": frame_rates(rows, kept_frames if kept_frames is not None
                                         else [r[ENCODED_LEN] for r in rows]),
        **extras,
    }


def not_run_lines(not_run: list[dict]) -> list[str]:
    """The checks and stages that did not run, each with why."""
    if not not_run:
        return []
    return ["## Checks that did not run", ""] + \
        [f"- {md(n['check'])}: {md(n['why'])}" for n in not_run] + [""]


def input_inventory(kept: list, rejected: list[dict]) -> dict:
    """Hours, speakers and tags of the input: what ingest read (``kept``: its utterances) and
    the files it rejected (their records carry seconds, tag and speaker)."""
    hours_speaker, hours_tag, speakers_tag = defaultdict(float), defaultdict(float), defaultdict(set)
    entries = [(u.tag, u.speaker, u.duration) for u in kept] + \
        [(r.get("tag", ""), r.get("speaker", "?"), float(r.get("seconds") or 0.0))
         for r in rejected if not r.get("part")]
    for tag, speaker, seconds in entries:
        hours_speaker[speaker] += seconds / 3600
        hours_tag[tag] += seconds / 3600
        speakers_tag[tag].add(speaker)
    return {"files": len(entries), "hours": round(sum(e[2] for e in entries) / 3600, 4),
            "hours_per_speaker": {k: round(v, 4) for k, v in sorted(hours_speaker.items())},
            "hours_per_tag": {k: round(v, 4) for k, v in sorted(hours_tag.items())},
            "speakers_per_tag": {k: len(v) for k, v in sorted(speakers_tag.items())}}


def _table(header: list[str], rows: list[list]) -> list[str]:
    """Speaker and tag names, reasons: escaped (folder names and transcripts are untrusted)."""
    return md_table(header, rows)


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
        lines += ["", f"**Warning:** {kind} {md(name or '(none)')} keeps only "
                      f"{rate_of(fps, group):.2f} frames/s (< {MIN_FRAMES_PER_SECOND:g}): "
                      "most frames repeat the one before, from a broken or collapsing codec or "
                      "silent audio; listen to a few clips and check the codec."]
    lines += [""] + _table(["tag", "frames/s"], [[k or "(none)", f"{v:.2f}"]
                                                 for k, v in fps["per_tag"].items()])
    lines += [""] + _table(["speaker", "frames/s"], [[k, f"{v:.2f}"]
                                                     for k, v in fps["per_speaker"].items()])
    return lines


def headline(summary: dict) -> str:
    """Input hours, kept hours and the share kept, then what was rejected."""
    kept = f"{summary['clips']} clips, {summary['hours']:.3f} hours kept"
    if summary.get("input_hours"):
        kept = (f"{summary['input_hours']:.3f} hours in the input; {summary['hours']:.3f} hours "
                f"kept ({summary['kept_share']:.0%}, {summary['clips']} clips; trimmed silence "
                "is not kept)")
    lost = summary.get("rejected_total_hours")
    lost = f" ({lost:.3f} hours)" if lost is not None else ""
    return f"{kept}; {summary['rejected']} items rejected{lost} (see rejected.jsonl)."


def _share(kept: float, total: float | None) -> str:
    return f"{kept / total:.0%}" if total else "-"


def markdown(summary: dict, pictures: list[str] = ()) -> str:
    given = summary.get("input_totals") or {}
    lines = ["# Dataset report", "", headline(summary), ""]
    lines += not_run_lines(summary.get("not_run", []))
    lines += ["## Hours per speaker", ""]
    given_speaker = given.get("hours_per_speaker", {})
    lines += _table(["speaker", "input hours", "kept hours", "kept"],
                    [[k, f"{given_speaker.get(k, 0.0):.4f}", f"{v:.4f}",
                      _share(v, given_speaker.get(k))]
                     for k, v in summary["hours_per_speaker"].items()])
    lines += ["", "## Hours per tag", ""]
    given_tag = given.get("hours_per_tag", {})
    lines += _table(["tag", "input hours", "kept hours", "kept", "speakers in the input",
                     "speakers kept"],
                    [[k or "(none)", f"{given_tag.get(k, 0.0):.4f}", f"{v:.4f}",
                      _share(v, given_tag.get(k)), given.get("speakers_per_tag", {}).get(k, "-"),
                      summary["speakers_per_tag"][k]]
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
                  f"unknown characters: {md(''.join(cov['unknown'])) or 'none'}; "
                  f"byte-fallback characters: {md(''.join(cov['byte_fallback'])) or 'none'}."]
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
