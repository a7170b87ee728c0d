"""``index.html`` of a codec check: the report's tables, then each sampled clip with players for
the original and every codec's round trip, their metrics and spectrograms, filtered by speaker,
tag and poor/fine."""
from __future__ import annotations

import math
from pathlib import Path

from kani_adapt.pages import html as pages

METRICS = ("mel", "stft", "si_sdr", "stoi")


def _cell(folder: Path, wav: Path, lines: list[pages.Part] = ()) -> list[pages.Part]:
    from kani_adapt.pages.plots import picture_of

    if not wav.is_file():
        return [pages.text("no audio", "muted")]
    png = folder / "spectrograms" / wav.relative_to(folder / "wavs").with_suffix(".png")
    picture_of(wav, png)
    return [pages.clip(pages.link(wav, folder), pages.link(png, folder), wav.stem), *lines]


def write_page(folder: Path, reports: dict[str, dict], summary_md: str, limits) -> Path | None:
    """folder/index.html, when run_check kept the clips under folder/wavs (else nothing);
    ``limits``: the check's Thresholds (what makes a clip poor)."""
    folder, names = Path(folder), list(reports)
    first = reports[names[0]]["clips"]
    if not first or not first[0].get("wav"):
        return None
    table = pages.ClipTable(["clip", "original", *names], filters=["speaker", "tag", "poor"])
    for k, clip in enumerate(first):
        cells = {"clip": [pages.text(f"{clip['clip_id']} ({clip['seconds']:.2f} s)"),
                          pages.text(f"{clip['speaker']}, {clip['tag'] or 'no tag'}", "muted")],
                 "original": _cell(folder, folder / "wavs" / "original" / clip["wav"])}
        poor = []
        for name in names:
            scores = reports[name]["clips"][k]["scores"]
            flag = limits.is_poor(scores)
            poor += [name] if flag else []
            shown = ", ".join(f"{m} {scores[m]:.3f}" for m in METRICS
                              if scores.get(m) is not None and not math.isnan(scores[m]))
            cells[name] = _cell(folder, folder / "wavs" / name / clip["wav"],
                                [pages.text(shown)] + ([pages.text("poor", "flag")] if flag else []))
        table.add({"speaker": clip["speaker"], "tag": clip["tag"], "poor": ", ".join(poor) or "none"}, cells)
    trips = pages.Section("Round trips", "Each sampled clip, then what each codec makes of it.", table)
    return pages.write_page(folder / "index.html", "Codec readiness", summary_md, [trips])
