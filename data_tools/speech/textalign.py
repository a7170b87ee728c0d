"""Text-to-text alignment of a user's transcript against ASR words, without forced alignment.

The transcript is split into words (punctuation-only tokens stay with their neighbour so no
character is lost); each word is matched to an ASR word by an edit-distance alignment over
normalised word tokens (kaldialign's Levenshtein). A matched or substituted word takes the timing
of its ASR word; a word the recogniser missed is placed between its timed neighbours, in
proportion to its length. The words keep the user's casing and punctuation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

# (word, start_s, end_s) or (word, start_s, end_s, confidence): what any recogniser gives.
AsrWordLike = Sequence

SENTENCE_END = re.compile(r"[.!?…。！？؟][\"'”’»)\]]*$")


@dataclass
class AsrWord:
    text: str
    start: float
    end: float
    confidence: float | None = None


@dataclass
class TimedWord:
    text: str  # as written by the user (or the recogniser, without a transcript)
    start: float
    end: float
    status: str = "match"  # match | substitution | missing (timing interpolated)
    sentence_end: bool = False
    asr_after: int = 0  # ASR words heard between this word and the next that the text lacks

    @property
    def timed(self) -> bool:
        """Its timing comes from the recogniser (not interpolated)."""
        return self.status != "missing"


def normalise_word(token: str) -> str:
    """Lower case, punctuation stripped: how words are compared (not how they are kept)."""
    return re.sub(r"[^\w'-]", "", token).lower().strip("'-")


def as_asr_words(words: Sequence[AsrWordLike | AsrWord]) -> list[AsrWord]:
    """Accept tuples ``(word, start_s, end_s[, confidence])`` or ``AsrWord``; ordered by time."""
    out = [w if isinstance(w, AsrWord) else AsrWord(str(w[0]).strip(), float(w[1]), float(w[2]),
                                                    None if len(w) < 4 else w[3])
           for w in words]
    return sorted(out, key=lambda w: (w.start, w.end))


def transcript_tokens(text: str, norm: Callable[[str], str] = normalise_word) -> list[str]:
    """Whitespace tokens, with punctuation-only tokens joined to the word before (or after)."""
    tokens: list[str] = []
    pending = ""
    for token in text.split():
        if not norm(token):
            if tokens:
                tokens[-1] += " " + token
            else:
                pending += token + " "
            continue
        tokens.append(pending + token)
        pending = ""
    if pending and not tokens:
        return [pending.strip()]
    if pending:
        tokens[-1] += " " + pending.strip()
    return tokens


def edit_alignment(ref: list[str], hyp: list[str]) -> list[tuple[int | None, int | None]]:
    """Index pairs (ref i, hyp j); None on one side marks a deletion or an insertion."""
    import kaldialign

    ids: dict[str, int] = {}
    r = [ids.setdefault(t, len(ids) + 1) for t in ref]
    h = [ids.setdefault(t, len(ids) + 1) for t in hyp]
    pairs, i, j = [], 0, 0
    for a, b in kaldialign.align(r, h, 0):
        pairs.append((i if a != 0 else None, j if b != 0 else None))
        i += a != 0
        j += b != 0
    return pairs


def asr_only(asr: list[AsrWord]) -> list[TimedWord]:
    """Without a transcript the recogniser's words are the text."""
    return [TimedWord(w.text, w.start, w.end, "match", bool(SENTENCE_END.search(w.text)))
            for w in asr if w.text]


def align_transcript(text: str, asr: list[AsrWord],
                     norm: Callable[[str], str] = normalise_word) -> list[TimedWord]:
    """Every transcript word, in order, with a start and end in the recording."""
    tokens = transcript_tokens(text, norm)
    words = [TimedWord(t, 0.0, 0.0, "missing", bool(SENTENCE_END.search(t))) for t in tokens]
    asr = [w for w in asr if norm(w.text)]
    last = None
    for i, j in edit_alignment([norm(t) for t in tokens], [norm(w.text) for w in asr]):
        if i is None:
            if last is not None:
                words[last].asr_after += 1
            continue
        last = i
        if j is not None:
            same = norm(tokens[i]) == norm(asr[j].text)
            words[i].start, words[i].end = asr[j].start, asr[j].end
            words[i].status = "match" if same else "substitution"
    _interpolate(words, asr[-1].end if asr else 0.0)
    return words


def _interpolate(words: list[TimedWord], end_of_speech: float) -> None:
    """Spread each run of missing words over the time between its timed neighbours."""
    i = 0
    while i < len(words):
        if words[i].timed:
            i += 1
            continue
        j = i
        while j < len(words) and not words[j].timed:
            j += 1
        lo = words[i - 1].end if i > 0 else (words[j].start if j < len(words) else 0.0)
        hi = max(lo, words[j].start if j < len(words) else end_of_speech)
        lengths = [len(w.text) for w in words[i:j]]
        t, step = lo, (hi - lo) / sum(lengths)
        for w, n in zip(words[i:j], lengths):
            w.start, w.end = t, t + n * step
            t = w.end
        i = j
