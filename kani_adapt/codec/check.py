"""Codec readiness report: round-trip a sample of a corpus and say whether the codec copes.

Decisions (sampling, grouping, thresholds, verdict) are pure functions over plain data; only
`score_clips` touches audio and a codec.
"""
from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from kani_adapt.core import atomic
from kani_adapt.codec.manifest import Clip, load_audio
from kani_adapt.codec.metrics import all_metrics
from kani_adapt.core.console import progress
from kani_adapt.core.untrusted import md, md_code

METRICS = ("mel", "stft", "si_sdr", "stoi")


@dataclass(frozen=True)
class Thresholds:
    """A clip is poor when any limit is crossed. Defaults are starting points, not calibrated
    against listening tests; SI-SDR is reported but not gated by default because GAN codecs do
    not keep phase."""

    mel_max: float = 0.35  # mean |log10 mel| difference
    stoi_min: float = 0.80
    si_sdr_min: float | None = None
    poor_share_max: float = 0.10  # more poor clips than this in any group: fine-tune

    def is_poor(self, scores: dict[str, float]) -> bool:
        """Whether a clip's round-trip ``scores`` cross any limit (a NaN STOI crosses none)."""
        if scores["mel"] > self.mel_max:
            return True
        if not math.isnan(scores["stoi"]) and scores["stoi"] < self.stoi_min:
            return True
        return self.si_sdr_min is not None and scores["si_sdr"] < self.si_sdr_min


@dataclass
class ClipScore:
    clip_id: str
    speaker: str
    tag: str
    seconds: float
    scores: dict[str, float] = field(default_factory=dict)
    wav: str = ""  # file name of the clip under the report's wavs/original/ and wavs/<codec>/


def sample_clips(clips: list[Clip], max_clips: int, seed: int) -> list[Clip]:
    """Up to ``max_clips`` clips, spread evenly over speakers (round-robin over shuffled lists),
    so one large speaker cannot hide a badly served small one."""
    rng = random.Random(seed)
    by_speaker: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        by_speaker[clip.speaker].append(clip)
    queues = [rng.sample(items, len(items)) for _, items in sorted(by_speaker.items())]
    chosen: list[Clip] = []
    while len(chosen) < max_clips and any(queues):
        for queue in queues:
            if queue and len(chosen) < max_clips:
                chosen.append(queue.pop())
    return chosen


def summarize(scores: list[ClipScore], limits: Thresholds) -> dict:
    """Mean metrics and share of poor clips, overall and per speaker and per tag."""
    def group(items: list[ClipScore]) -> dict:
        out = {"clips": len(items), "seconds": round(sum(s.seconds for s in items), 2)}
        for name in METRICS:
            values = [s.scores[name] for s in items if not math.isnan(s.scores[name])]
            out[name] = float(np.mean(values)) if values else float("nan")
        out["poor_share"] = sum(limits.is_poor(s.scores) for s in items) / max(len(items), 1)
        return out

    result = {"overall": group(scores), "speaker": {}, "tag": {}}
    for key in ("speaker", "tag"):
        buckets: dict[str, list[ClipScore]] = defaultdict(list)
        for item in scores:
            buckets[getattr(item, key)].append(item)
        result[key] = {name: group(items) for name, items in sorted(buckets.items())}
    return result


SHOWN_GROUPS = 5  # groups named in the verdict line; the rest are counted


def verdict(summary: dict, limits: Thresholds) -> str:
    """One line: fine as is, or fine-tune recommended naming the worst groups."""
    groups = [("overall", "all", summary["overall"])]
    for key in ("speaker", "tag"):
        groups += [(key, name, stats) for name, stats in summary[key].items()]
    bad = [f"{key} {name} ({stats['poor_share']:.0%} poor)" for key, name, stats in groups
           if stats["poor_share"] > limits.poor_share_max]
    if not bad:
        return "verdict: codec fine as is"
    more = f" and {len(bad) - SHOWN_GROUPS} more (tables below)" if len(bad) > SHOWN_GROUPS else ""
    return "verdict: fine-tune recommended: " + ", ".join(bad[:SHOWN_GROUPS]) + more


def score_clips(codec, clips: list[Clip], max_seconds: float, desc: str = "round trip",
                save: tuple[Path, str] | None = None) -> list[ClipScore]:
    """Round-trip each clip through ``codec`` (a `Codec`) and score it; ``save`` = (folder,
    name) keeps the clips as folder/original/<wav> and folder/<name>/<wav> for the players."""
    out = []
    for k, clip in enumerate(progress(clips, desc=desc, unit="clip")):
        audio = load_audio(clip.audio_filepath, codec.sample_rate, max_seconds=max_seconds)
        batch = torch.from_numpy(audio)[None]
        codes, frames = codec.encode(batch, torch.tensor([len(audio)]))
        recon, _ = codec.decode(codes, frames)
        trip = recon[0, : len(audio)].numpy()
        scores = all_metrics(audio, trip, codec.sample_rate)
        wav = f"{k:03d}_{clip.audio_filepath.stem}.wav" if save else ""
        if save:
            for sub, x in (("original", audio), (save[1], trip)):
                atomic.write_audio(save[0] / sub / wav, np.clip(x, -1, 1), codec.sample_rate)
        out.append(ClipScore(clip.audio_filepath.name, clip.speaker, clip.tag,
                             len(audio) / codec.sample_rate, scores, wav))
    return out


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def render_markdown(reports: dict[str, dict], limits: Thresholds) -> str:
    """Markdown tables, one row per group, one column block per codec (side by side)."""
    names = list(reports)
    lines = ["# Codec readiness report", ""]
    lines += [f"- {md_code(name)}: {md(reports[name]['source'])} -> {md(reports[name]['verdict'])}"
              for name in names]
    lines += ["", f"Poor clip: mel > {limits.mel_max} or STOI < {limits.stoi_min}"
              + (f" or SI-SDR < {limits.si_sdr_min} dB" if limits.si_sdr_min is not None else "")
              + f"; a group with more than {limits.poor_share_max:.0%} poor clips needs fine-tuning.", ""]
    header = "| group | clips | " + " | ".join(
        f"{n} {m}" for n in names for m in (*METRICS, "poor")) + " |"
    first = reports[names[0]]["summary"]
    rows = [("overall", "all")] + [(k, g) for k in ("speaker", "tag") for g in first[k]]
    lines += [header, "|" + "---|" * (2 + 5 * len(names))]
    for key, group in rows:
        cells = []
        for n in names:
            stats = reports[n]["summary"][key] if key == "overall" else reports[n]["summary"][key][group]
            cells += [_fmt(stats[m]) for m in METRICS] + [f"{stats['poor_share']:.0%}"]
        label = "all" if key == "overall" else f"{key} {md(group)}"  # speaker and tag names
        lines.append(f"| {label} | {first[key]['clips'] if key == 'overall' else first[key][group]['clips']} | "
                     + " | ".join(cells) + " |")
    lines += ["", md(reports[names[-1]]["verdict"]), ""]
    return "\n".join(lines + [_listen_line(reports), ""])


def _listen_line(reports: dict[str, dict]) -> str:
    """Where the clips the report scored can be heard (the files write_report's page plays)."""
    first = next(iter(reports.values()))["clips"]
    wav = first[0]["wav"] if first else ""
    if not wav:
        return ("Listen before trusting the numbers: this check kept no clips (a recipe's codec "
                "check keeps them under `wavs/` beside its report).")
    trips = " and ".join(md_code(f"wavs/{name}/{wav}") for name in reports)
    return (f"Listen before trusting the numbers: `index.html` beside this report plays every "
            f"clip next to its round trips, e.g. {md_code(f'wavs/original/{wav}')} and {trips}.")


def write_report(reports: dict[str, dict], limits: Thresholds, out_dir: Path) -> tuple[Path, Path]:
    """codec_check.md, codec_check.json and, where run_check kept the clips (``audio_dir``),
    index.html with players for each clip and its round trips."""
    from kani_adapt.codec.page import write_page

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "codec_check.md", out_dir / "codec_check.json"
    atomic.write_text(md, render_markdown(reports, limits))
    write_page(out_dir, reports, render_markdown(reports, limits), limits)
    payload = {"thresholds": asdict(limits), "codecs": reports}
    # NaN is not JSON: STOI of a too-short clip is written as null.
    atomic.write_text(js, json.dumps(_nan_to_none(payload), indent=2))
    return md, js


def _nan_to_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def run_check(codecs: dict[str, tuple[str, object]], clips: list[Clip], limits: Thresholds,
              max_clips: int, max_seconds: float, seed: int, audio_dir: Path | None = None) -> dict[str, dict]:
    """Score the same sample with each codec (name -> (source, codec)); returns the reports.
    ``audio_dir`` (the report's wavs/): keep every clip and round trip there for the players."""
    chosen = sample_clips(clips, max_clips, seed)
    reports = {}
    for name, (source, codec) in codecs.items():
        scores = score_clips(codec, chosen, max_seconds, desc=f"round trip ({name})",
                             save=(Path(audio_dir), name) if audio_dir is not None else None)
        summary = summarize(scores, limits)
        reports[name] = {"source": source, "summary": summary, "verdict": verdict(summary, limits),
                         "clips": [asdict(s) for s in scores]}
    return reports
