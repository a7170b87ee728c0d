"""One voice per utterance when a long recording is cut (segment: at pauses; transcribe: at
sentence ends): windows of the recording are embedded with the speaker embedder,
``consistency.voice_changes`` places the changes, and each piece is judged.

- Pieces are cut at the changes too (segment: pauses inside each stretch of one voice;
  transcribe: a cut is split between the words either side), and what lies in the second or
  two around a change, which may hold both voices, is left out (``voice_change``, with its text).
- The stretches between changes are compared with the recording's main voice (the longest
  stretch's centroid); a piece inside a stretch of another voice (an interviewer, a second host)
  is rejected as ``other_voice``, so nothing is labelled with the wrong speaker. A voice that
  comes back (A, B, A) is the main voice again.

Runs where ``segment.voice_changes`` allows it (auto: when ``embed.model`` is on this machine);
the embedder is loaded once per stage run, and only when a long recording is cut.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from data_tools.speech.consistency import (ChangePoint, ConsistencyConfig, sliding_windows, unit_rows,
                                    voice_changes)


@dataclass
class Stretch:
    """Where one voice speaks: from the previous change to the next, less the stretch of
    windows either side of a change that may hold both voices."""

    start_s: float
    end_s: float
    main: bool  # the recording's main voice
    cosine: float  # of its centroid to the main voice's


@dataclass
class Voices:
    """Where the voice changes in one recording, and which stretches are its main voice."""

    changes: list[ChangePoint] = field(default_factory=list)
    stretches: list[Stretch] = field(default_factory=list)
    threshold: float = math.nan  # cosine below which a stretch is another voice

    def judge(self, start_s: float, end_s: float) -> tuple[str, str] | None:
        """None when one voice, the main one, speaks in [start_s, end_s]; else (code, detail)."""
        inside = [c for c in self.changes if start_s < c.time_s < end_s]
        if inside:
            c = inside[0]
            return "voice_change", (f"voice changes at ~{c.time_s:.1f} s (between {c.lo_s:.1f} "
                                    f"and {c.hi_s:.1f} s): cosine {c.cosine:.3f} to the voice "
                                    f"before, limit {c.threshold:.3f}")
        middle = (start_s + end_s) / 2
        for s in self.stretches:
            if s.start_s <= middle <= s.end_s and not s.main:
                return "other_voice", (f"{s.start_s:.1f}-{s.end_s:.1f} s is another voice than "
                                       f"the recording's main one: cosine {s.cosine:.3f}, limit "
                                       f"{self.threshold:.3f}; give it its own speaker to keep it")
        return None


def find_voices(audio: np.ndarray, rate: int, embedder, speech=None, window_s: float = 3.0,
                hop_s: float = 1.0, min_drop: float = 0.25) -> Voices:
    """The voices of one mono recording; ``embedder.embed(clips, rate)`` gives one row per clip.
    With ``speech`` (the VAD's spans, seconds) only windows that are at least half speech are
    embedded: silence and noise say nothing about who speaks."""
    duration = len(audio) / rate
    windows = sliding_windows(duration, window_s, hop_s)
    if speech is not None:
        windows = [w for w in windows if _speech_in(w, speech) >= (w[1] - w[0]) / 2]
    if len(windows) < 2:
        return Voices(stretches=[Stretch(0.0, duration, True, 1.0)])
    embs = embedder.embed([audio[int(s * rate): int(e * rate)] for s, e in windows], rate)
    changes = voice_changes(embs, windows, ConsistencyConfig(min_drop=min_drop))
    if not changes:
        return Voices(stretches=[Stretch(0.0, duration, True, 1.0)])
    unit = unit_rows(embs)
    bounds = [0] + [c.window for c in changes] + [len(windows)]
    starts = [0.0] + [c.hi_s for c in changes]
    ends = [c.lo_s for c in changes] + [duration]
    centroids = []
    for a, b in zip(bounds, bounds[1:]):
        mean = unit[a:b].mean(axis=0)
        centroids.append(mean / max(np.linalg.norm(mean), 1e-12))
    main = int(np.argmax([e - s for s, e in zip(starts, ends)]))
    threshold = changes[0].threshold
    stretches = []
    for start, end, centroid in zip(starts, ends, centroids):
        cosine = float(centroid @ centroids[main])
        stretches.append(Stretch(start, end, cosine >= threshold, round(cosine, 4)))
    return Voices(changes, stretches, threshold)


def _speech_in(window: tuple[float, float], speech) -> float:
    return sum(max(0.0, min(window[1], e) - max(window[0], s)) for s, e in speech)


def one_voice_cuts(plan, found: Voices | None, min_seconds: float = 0.0, pad_seconds: float = 0.0):
    """A ``longform.CutPlan`` whose cuts each hold one voice, the main one: a cut that spans a
    change is split there (the words in the second or two around the change, which may hold
    both voices, become a ``voice_change`` rejection; a part shorter than ``min_seconds`` is
    ``too_short``), and a cut where another voice speaks becomes ``other_voice``. Every word ends
    up in a cut or a rejection, so the transcript stays whole."""
    from data_tools.speech.longform import CutPlan, CutRejection

    if found is None:
        return plan
    out = CutPlan(rejections=list(plan.rejections))
    for cut in plan.cuts:
        for part in _split_at_changes(cut, found, min_seconds, pad_seconds):
            if isinstance(part, CutRejection):
                out.rejections.append(part)
                continue
            why = found.judge(part.start_s, part.end_s)
            if why is None:
                out.cuts.append(part)
            else:
                out.rejections.append(CutRejection(part.start_s, part.end_s, *why, part.text))
    out.rejections.sort(key=lambda r: r.start_s)
    return out


def _split_at_changes(cut, found: Voices, min_seconds: float, pad_seconds: float) -> list:
    """The parts of ``cut`` between the changes inside it, as cuts and rejections in order."""
    from data_tools.speech.longform import Cut, CutRejection

    changes = [c for c in found.changes if cut.start_s < c.time_s < cut.end_s]
    if not changes:
        return [cut]
    if not cut.words:  # nothing to split by: the whole cut goes, its text kept
        return [CutRejection(cut.start_s, cut.end_s, *found.judge(cut.start_s, cut.end_s), cut.text)]
    regions: dict[int, list] = {}  # region k lies after k changes; -k-1: the zone of change k
    for w in cut.words:
        zone = next((k for k, c in enumerate(changes) if w.start < c.hi_s and w.end > c.lo_s), None)
        key = -zone - 1 if zone is not None else sum(c.hi_s <= w.start for c in changes)
        regions.setdefault(key, []).append(w)
    parts = []
    for key in sorted(regions, key=lambda k: regions[k][0].start):
        words = regions[key]
        text = " ".join(w.text for w in words)
        if key < 0:
            c = changes[-key - 1]
            parts.append(CutRejection(c.lo_s, c.hi_s, "voice_change",
                                      f"words between {c.lo_s:.1f} and {c.hi_s:.1f} s, where the "
                                      f"voice changes (~{c.time_s:.1f} s), may hold both voices", text))
            continue
        start = cut.start_s if key == 0 else max(words[0].start - pad_seconds, changes[key - 1].hi_s)
        end = cut.end_s if key == len(changes) else min(words[-1].end + pad_seconds, changes[key].lo_s)
        if end - start < min_seconds:
            parts.append(CutRejection(start, end, "too_short",
                                      f"{end - start:.2f} s left beside a voice change, limit "
                                      f"{min_seconds:g} s", text))
            continue
        unmatched = sum(w.status != "match" for w in words) / len(words)
        parts.append(Cut(start, end, text, words, cut.moved_s,
                         f"{cut.moved_why}; split at a voice change", round(unmatched, 4)))
    return parts


def wanted(cfg) -> bool:
    """Whether long recordings are checked for voice changes with this data config."""
    from kani_adapt.core import hub

    on = cfg.segment.voice_changes
    return on == "on" or (on == "auto" and hub.on_machine(cfg.embed.model))


def _embedder(ctx):
    """The speaker embedder voice checks use: the one handed to the stage, else embed.model
    where the config asks for checks; None when they are off."""
    if ctx.cfg.segment.voice_changes == "off":
        return None
    if ctx.given.get("embedder") is not None:
        return ctx.given["embedder"]
    if not wanted(ctx.cfg):
        return None
    from kani_adapt.core.devices import resolve
    from kani_adapt.models.speaker.embedder import load

    return load(ctx.cfg.embed.model, resolve(ctx.cfg.embed.device))


def for_recording(ctx, audio: np.ndarray, rate: int, speech=None) -> Voices | None:
    """The voices of a long recording being cut (``speech``: its VAD spans), or None when the
    config does not ask. The embedder loads once per stage run, at the first long recording."""
    if "voice_embedder" not in ctx.state:
        ctx.state["voice_embedder"] = _embedder(ctx)
    embedder = ctx.state["voice_embedder"]
    if embedder is None:
        return None
    seg = ctx.cfg.segment
    return find_voices(audio, rate, embedder, speech, seg.voice_window_seconds,
                       seg.voice_hop_seconds, seg.voice_min_drop)
