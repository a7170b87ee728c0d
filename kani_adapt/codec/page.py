"""``index.html`` of a codec check: the report's tables, then each sampled clip with players for
the original and every codec's round trip, their metrics and spectrograms, filtered by speaker,
tag and poor/fine."""
from __future__ import annotations

import math
from pathlib import Path

from kani_adapt.pages import html as pages

METRICS = ("mel", "stft", "si_sdr", "stoi")


def _cell(folder: Path, wav: Path, lines: list[str] = ()) -> str:
    from kani_adapt.audio import read
    from kani_adapt.pages.plots import spectrogram_png

    if not wav.is_file():
        return '<span class="muted">no audio</span>'
    png = folder / "spectrograms" / wav.relative_to(folder / "wavs").with_suffix(".png")
    clip = read(wav, check_finite=False)
    spectrogram_png(clip.audio, clip.sample_rate, png)
    return (pages.player(pages.link(wav, folder)) + pages.picture(pages.link(png, folder), wav.stem)
            + "".join(f"<div>{line}</div>" for line in lines))


def write_page(folder: Path, reports: dict[str, dict], summary_md: str, limits) -> Path | None:
    """folder/index.html, when run_check kept the clips under folder/wavs (else nothing);
    ``limits``: the check's Thresholds (what makes a clip poor)."""
    folder, names = Path(folder), list(reports)
    first = reports[names[0]]["clips"]
    if not first or not first[0].get("wav"):
        return None
    table = pages.ClipTable(["clip", "original", *names], filters=["speaker", "tag", "poor"])
    for k, clip in enumerate(first):
        cells = {"clip": pages.esc(f"{clip['clip_id']} ({clip['seconds']:.2f} s)")
                 + f"<div class='muted'>{pages.esc(clip['speaker'])}, {pages.esc(clip['tag'] or 'no tag')}</div>",
                 "original": _cell(folder, folder / "wavs" / "original" / clip["wav"])}
        poor = []
        for name in names:
            scores = reports[name]["clips"][k]["scores"]
            flag = limits.is_poor(scores)
            poor += [name] if flag else []
            shown = ", ".join(f"{m} {scores[m]:.3f}" for m in METRICS
                              if scores.get(m) is not None and not math.isnan(scores[m]))
            cells[name] = _cell(folder, folder / "wavs" / name / clip["wav"],
                                [pages.esc(shown)] + (['<span class="flag">poor</span>'] if flag else []))
        table.add({"speaker": clip["speaker"], "tag": clip["tag"], "poor": ", ".join(poor) or "none"}, cells)
    sections = [f'<div class="summary">{pages.markdown_html(summary_md)}</div>',
                "<h2>Round trips</h2><p>Each sampled clip, then what each codec makes of it.</p>",
                table.html()]
    return pages.write_page(folder / "index.html", "Codec readiness", sections)
