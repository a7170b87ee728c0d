"""The validation report: statistics, Markdown for people, JSON for tools."""
from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict

import numpy as np

from data_tools.contribute.records import CHECKS, ERROR, Measured, Validation
from kani_adapt.core.untrusted import md, md_code, md_table, visible_name

EXAMPLES = 5  # problems shown per reason in Markdown; JSON keeps them all


def _spread(values: list[float]) -> dict:
    if not values:
        return {}
    p = np.percentile(values, [0, 10, 50, 90, 100])
    return dict(zip(("min", "p10", "median", "p90", "max"), (round(float(v), 4) for v in p)))


def statistics(measured: list[Measured], hours_by_accent: dict, card) -> dict:
    """Hours per split, speaker and accent, and the quality distribution of readable clips."""
    ok = [m for m in measured if m.readable and m.features is not None]
    per_split, per_speaker = defaultdict(float), defaultdict(float)
    speakers_split = defaultdict(set)
    for m in ok:
        per_split[m.clip.split] += m.duration / 3600
        per_speaker[m.clip.speaker] += m.duration / 3600
        speakers_split[m.clip.split].add(m.clip.speaker)
    return {
        "clips": len(measured), "readable_clips": len(ok),
        "hours": round(sum(m.duration for m in ok) / 3600, 4),
        "language": card.language if card else "",
        "license": card.license if card else "",
        "hours_per_split": {k: round(v, 4) for k, v in sorted(per_split.items())},
        "speakers_per_split": {k: len(v) for k, v in sorted(speakers_split.items())},
        "hours_per_speaker": {k: round(v, 4) for k, v in sorted(per_speaker.items())},
        "accents": {a: {"hours": round(sum(h.values()), 4), "speakers": len(h)}
                    for a, h in sorted(hours_by_accent.items())},
        "quality": {
            "duration_s": _spread([m.duration for m in ok]),
            "snr_db": _spread([m.features.snr_db for m in ok]),
            "silence_ratio": _spread([m.features.silence_ratio for m in ok]),
            "clipped_fraction": _spread([m.features.clipped_fraction for m in ok]),
            "sample_rates": dict(sorted(Counter(m.orig_sample_rate for m in ok).items())),
        },
    }


def to_json(v: Validation) -> dict:
    return {"folder": v.folder, "accepted": v.accepted,
            "checks": [dataclasses.asdict(c) for c in v.checks],
            "problems": [dataclasses.asdict(p) for p in v.problems], "stats": v.stats,
            "not_checked": v.not_checked, "thresholds_changed": v.thresholds_changed}


def caveat_lines(v: Validation) -> list[str]:
    """What the verdict does not cover: the checks that did not run and the thresholds that
    differ from the defaults (shown in the report and on the packaged card)."""
    lines = ["### Not checked", ""]
    lines += [f"- {md(n['check'])}: {md(n['why'])}" for n in v.not_checked] or ["Every check ran."]
    lines += ["", "### Thresholds changed from the defaults", ""]
    lines += [f"- `{k}`: {md(t['value'])} (default {md(t['default'])})"
              for k, t in v.thresholds_changed.items()] or ["None: every threshold is the default."]
    return lines


def _table(header: list[str], rows: list[list]) -> list[str]:
    """Speaker and accent names escaped: a contributor chose them (and the Hub card shows them)."""
    return md_table(header, rows)


def _problem_lines(v: Validation) -> list[str]:
    groups = defaultdict(list)
    for p in v.problems:
        order = CHECKS.index(p.check) if p.check in CHECKS else len(CHECKS)
        groups[(p.severity != ERROR, order, p.reason)].append(p)
    lines = []
    for (_, _, reason), items in sorted(groups.items()):
        lines.append(f"- **{items[0].severity}** `{reason}` ({items[0].check}, {len(items)})")
        lines += [f"  - {md(p.detail)}" for p in items[:EXAMPLES]]
        if len(items) > EXAMPLES:
            lines.append(f"  - ... and {len(items) - EXAMPLES} more (see the JSON report)")
    return lines or ["None."]


def stats_lines(stats: dict) -> list[str]:
    """Hours per split, speaker and accent, and the quality spread; also used in the card."""
    lines = ["### Hours", ""]
    lines += _table(["split", "hours", "speakers"],
                    [[k, f"{h:.3f}", stats["speakers_per_split"][k]]
                     for k, h in stats["hours_per_split"].items()])
    lines += [""] + _table(["accent", "hours", "speakers"],
                           [[k, f"{a['hours']:.3f}", a["speakers"]]
                            for k, a in stats["accents"].items()])
    lines += [""] + _table(["speaker", "hours"],  # folder names, hidden characters shown
                           [[visible_name(k), f"{h:.3f}"]
                            for k, h in stats["hours_per_speaker"].items()])
    q = stats["quality"]
    lines += ["", "### Quality", ""]
    lines += _table(["measure", "min", "p10", "median", "p90", "max"],
                    [[name] + list(q[name].values()) for name in
                     ("duration_s", "snr_db", "silence_ratio", "clipped_fraction") if q[name]])
    rates = ", ".join(f"{r} Hz: {n}" for r, n in q["sample_rates"].items()) or "none"
    return lines + ["", f"Recorded sample rates (clips): {rates}."]


def markdown(v: Validation) -> str:
    verdict = "ACCEPTED" if v.accepted else f"REJECTED ({len(v.errors())} errors)"
    s = v.stats
    lines = [f"# Contribution check: {verdict}", "", f"Folder: {md_code(v.folder)}; {s['clips']} clips "
             f"({s['readable_clips']} readable), {s['hours']:.3f} hours.", "", "## Checks", ""]
    lines += _table(["check", "status", "note"], [[c.name, c.status, c.note] for c in v.checks])
    lines += ["", *caveat_lines(v)]
    lines += ["", "## Problems", ""] + _problem_lines(v) + ["", "## Statistics", ""]
    return "\n".join(lines + stats_lines(s)) + "\n"
