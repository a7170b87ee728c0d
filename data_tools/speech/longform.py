"""Cutting long recordings into utterances from ASR word timings and VAD pauses (no MFA).

``plan_cuts`` takes what a recogniser and a VAD give for one recording: words with times and the
speech spans. Without a transcript the recogniser's words are the text; with one, the transcript
is aligned to the ASR words text-to-text (``textalign``) and the user's words are kept. A cut may
only fall between two words whose timings come from the recogniser, where the VAD heard a pause:
the cut point is moved into that pause and the cut records how far it moved and why. Utterances
keep ``min_seconds``..``max_seconds``, preferring sentence ends, then the longest pause. What
cannot be kept (no pause within ``max_seconds``, a piece shorter than ``min_seconds``, a stretch
whose transcript does not match what was heard) is returned as a rejection with its text, so the
kept and rejected texts together always give back the whole transcript.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable, Sequence

from data_tools.speech.textalign import (TimedWord, align_transcript, as_asr_words, asr_only,
                                  normalise_word)

Span = tuple[float, float]


@dataclass
class CutConfig:
    min_seconds: float = 2.0  # shortest utterance kept (segment.min_seconds)
    max_seconds: float = 20.0  # longest utterance kept (segment.max_seconds)
    pad_seconds: float = 0.15  # silence kept around speech at each edge (segment.pad_seconds)
    min_pause_seconds: float = 0.1  # VAD silences shorter than this are not places to cut
    # Share of transcript words not heard as such by the recogniser above which a stretch is
    # rejected: ASR word error on clean read speech is ~5-15 %, a text that drifted is ~50 %+.
    max_unmatched_share: float = 0.3
    # More transcript words than this in a row that the recogniser did not hear at all: text
    # that was not spoken (a skipped paragraph), even where the share above stays low.
    max_missing_run: int = 4
    # Transcript words x ASR words the alignment may hold in memory (~4 bytes each): 1e8 is
    # ~10k words a side, over an hour of speech; longer recordings are rejected, not swapped.
    max_align_cells: float = 1e8


@dataclass
class Cut:
    start_s: float
    end_s: float
    text: str  # the user's words (or the recogniser's, without a transcript)
    words: list[TimedWord]
    moved_s: float  # the larger distance either edge moved from the ASR word gap into a pause
    moved_why: str  # per edge: recording_start/end, word_gap (the pause lies in the ASR gap),
    #                 vad_pause (ASR times overlap the VAD pause: VAD trusted, the cut moved)
    unmatched_share: float = 0.0  # transcript words the recogniser did not hear as such

    @property
    def duration(self) -> float:
        return self.end_s - self.start_s


@dataclass
class CutRejection:
    start_s: float
    end_s: float
    code: str  # no_pause_within_max | too_short | poor_alignment | no_words | too_long_to_align
    #           | voice_change | other_voice (data_tools/speech/voices.py)
    detail: str
    text: str = ""


@dataclass
class CutPlan:
    cuts: list[Cut] = field(default_factory=list)
    rejections: list[CutRejection] = field(default_factory=list)


@dataclass
class _Boundary:
    prev_end: float  # where the utterance before it ends
    next_start: float  # where the utterance after it starts
    moved_s: float
    why: str
    pause_s: float


def pauses(spans: Sequence[Span]) -> list[Span]:
    """Silences between consecutive speech spans (overlapping spans merged)."""
    merged: list[list[float]] = []
    for s, e in sorted(spans):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(a[1], b[0]) for a, b in zip(merged, merged[1:])]


def boundary(a: TimedWord, b: TimedWord, gaps: list[Span], starts: list[float],
             cfg: CutConfig) -> _Boundary | None:
    """Where to cut between words a and b: inside a VAD pause lying between their centres."""
    lo, hi = (a.start + a.end) / 2, (b.start + b.end) / 2
    naive = (a.end + b.start) / 2
    first = max(0, bisect.bisect_left(starts, lo) - 1)
    near = [p for p in gaps[first: bisect.bisect_right(starts, hi)]
            if p[1] - p[0] >= cfg.min_pause_seconds and p[0] < hi and p[1] > lo]
    if not near:
        return None
    p0, p1 = min(near, key=lambda p: max(p[0] - naive, naive - p[1], 0.0))
    g0, g1 = max(p0, a.end), min(p1, b.start)
    if g1 > g0:
        point, why = (g0 + g1) / 2, "word_gap"
    else:
        # the recogniser's times overlap the pause: trust the VAD, stay between the two words
        point, why = min(max((p0 + p1) / 2, a.start), b.end), "vad_pause"
    return _Boundary(prev_end=min(point, max(a.end, p0) + cfg.pad_seconds),
                     next_start=max(point, min(b.start, p1) - cfg.pad_seconds),
                     moved_s=abs(point - naive), why=why, pause_s=p1 - p0)


def boundaries(words: list[TimedWord], spans: Sequence[Span],
               cfg: CutConfig) -> dict[int, _Boundary]:
    """{k: where to cut between word k and k+1} for every place a cut is allowed."""
    gaps = pauses(spans)
    starts = [p[0] for p in gaps]
    out = {}
    for k in range(len(words) - 1):
        a, b = words[k], words[k + 1]
        if not (a.timed and b.timed) or a.asr_after:  # guessed times, or unexpected speech
            continue
        found = boundary(a, b, gaps, starts, cfg)
        if found is not None:
            out[k] = found
    return out


def _edge(t: float, spans: Sequence[Span], before: bool) -> float:
    """Widen a recording-edge word time to the VAD span it lies in (the VAD heard it first)."""
    for s, e in spans:
        if s < t < e:
            return s if before else e
    return t


def plan_cuts(asr_words: Sequence, speech_spans: Sequence[Span], cfg: CutConfig = CutConfig(),
              transcript: str | None = None, duration_s: float | None = None,
              normalise: Callable[[str], str] = normalise_word) -> CutPlan:
    """Utterances and rejections of one long recording.

    ``asr_words``: ``[(word, start_s, end_s[, confidence])]`` or ``AsrWord``; ``speech_spans``:
    ``[(start_s, end_s)]`` from the VAD; ``transcript``: the user's text for the whole recording.
    """
    asr = as_asr_words(asr_words)
    spans = sorted(speech_spans)
    end = duration_s if duration_s is not None else max([e for _, e in spans] +
                                                        [w.end for w in asr] + [0.0])
    if transcript is not None and len(transcript.split()) * len(asr) > cfg.max_align_cells:
        return CutPlan(rejections=[CutRejection(
            0.0, end, "too_long_to_align", f"{len(transcript.split())} transcript words x "
            f"{len(asr)} ASR words exceeds max_align_cells={cfg.max_align_cells:g}; split the "
            f"recording and its transcript into parts of under an hour", transcript)])
    words = asr_only(asr) if transcript is None else align_transcript(transcript, asr, normalise)
    if not words or not any(w.timed for w in words):
        text = " ".join(w.text for w in words)
        return CutPlan(rejections=[CutRejection(0.0, end, "no_words", "the recogniser heard no "
                                                "word of the transcript" if words else
                                                "the recogniser heard no words", text)])
    rec_start = max(0.0, _edge(words[0].start, spans, True) - cfg.pad_seconds)
    rec_end = min(end, _edge(words[-1].end, spans, False) + cfg.pad_seconds)
    return _group(words, boundaries(words, spans, cfg), rec_start, rec_end, cfg)


def _group(words: list[TimedWord], bounds: dict[int, _Boundary], rec_start: float,
           rec_end: float, cfg: CutConfig) -> CutPlan:
    """Greedy: from each start take the latest sentence end that keeps min..max seconds, else
    the longest pause; a stretch without any is rejected, and cutting resumes after it."""
    last = len(words) - 1
    ends = {k: b.prev_end for k, b in bounds.items()} | {last: rec_end}
    order = sorted(ends)
    plan, i, start, before = CutPlan(), 0, rec_start, None
    while i <= last:
        cands = order[bisect.bisect_left(order, i):]
        fits = [k for k in cands if cfg.min_seconds <= ends[k] - start <= cfg.max_seconds]
        sentence = [k for k in fits if words[k].sentence_end or k == last]
        if sentence or fits:
            k = max(sentence) if sentence else max(fits, key=lambda k: (bounds[k].pause_s, k))
            _keep(plan, words[i: k + 1], start, ends[k], before, bounds.get(k), cfg)
        else:
            short = [k for k in cands if ends[k] - start < cfg.min_seconds]
            k = max(short) if short else cands[0]
            code, limit = ("too_short", cfg.min_seconds) if short else \
                ("no_pause_within_max", cfg.max_seconds)
            plan.rejections.append(CutRejection(
                start, ends[k], code, f"{ends[k] - start:.2f} s, limit {limit:g} s",
                " ".join(w.text for w in words[i: k + 1])))
        if k < last:
            start, before = bounds[k].next_start, bounds[k]
        i = k + 1
    return plan


def _keep(plan: CutPlan, words: list[TimedWord], start: float, end: float,
          before: _Boundary | None, after: _Boundary | None, cfg: CutConfig) -> None:
    text = " ".join(w.text for w in words)
    unmatched = sum(w.status != "match" for w in words) / len(words)
    unheard = _longest_missing_run(words)
    if unmatched > cfg.max_unmatched_share or unheard > cfg.max_missing_run:
        plan.rejections.append(CutRejection(
            start, end, "poor_alignment",
            f"{unmatched:.0%} of {len(words)} transcript words not heard as written "
            f"(limit {cfg.max_unmatched_share:.0%}); {unheard} in a row not heard at all "
            f"(limit {cfg.max_missing_run})", text))
        return
    moved = max(before.moved_s if before else 0.0, after.moved_s if after else 0.0)
    why = (f"start: {before.why if before else 'recording_start'}, "
           f"end: {after.why if after else 'recording_end'}")
    plan.cuts.append(Cut(start, end, text, words, round(moved, 4), why, round(unmatched, 4)))


def _longest_missing_run(words: list[TimedWord]) -> int:
    longest = run = 0
    for w in words:
        run = run + 1 if w.status == "missing" else 0
        longest = max(longest, run)
    return longest


def texts_in_order(plan: CutPlan) -> str:
    """Kept and rejected texts in time order: the whole transcript again."""
    items = sorted([(c.start_s, c.text) for c in plan.cuts] +
                   [(r.start_s, r.text) for r in plan.rejections])
    return " ".join(t for _, t in items if t)
