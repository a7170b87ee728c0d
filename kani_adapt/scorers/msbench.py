"""Upstream's benchmark protocol for text (nineninesix make-speech-benchmark v2, docs/PROTOCOL.md):
the normaliser and the error arithmetic, so kani-adapt's WER and CER can be set beside theirs.

Normaliser, applied identically to reference and hypothesis: Unicode NFC, numbers spelled in the
text's language, lower case, every character of :data:`PUNCTUATION` replaced by a space,
whitespace collapsed. Apostrophes (``'``, word-internal in "don't") and diacritics ("año" is not
"ano") are kept. Numbers are spelled by the project's text frontend (what the model was given to
read), where upstream calls num2words on each digit run: "3,50 €" reads "drei Euro fünfzig Cent"
here, "drei komma fünf null €" there; plain cardinals agree.

Arithmetic: a word is a whitespace-separated token, a character every character including the
space (jiwer's ``process_characters``); corpus WER = sum(S + D + I) / sum(reference words), CER
alike; an utterance is catastrophic when its WER is strictly above 0.5; an utterance whose
reference normalises to nothing is counted apart (``n_empty_ref``), never scored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from kani_adapt.text import frontend

NAME = "msbench"
PUNCTUATION = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~«»„“”‘’…–—¿¡"
_SPACED = {ord(c): " " for c in PUNCTUATION}
CATASTROPHIC_WER = 0.5  # strictly above: catastrophic
BOOTSTRAP_RESAMPLES = 2000  # 95 % speaker-cluster bootstrap
SMALL_CELL_SPEAKERS = 30  # a cell with fewer speakers is flagged


def normalise(text: str | None, language: str) -> str:
    """The protocol's scoring text (see the module docstring)."""
    spelled = frontend.normalize(text or "", language)  # NFC, invisible characters, numbers
    return " ".join(spelled.lower().translate(_SPACED).split())


@dataclass(frozen=True)
class Alignment:
    """One utterance: word-level S/D/I/hits and character-level edits after normalisation."""

    reference: str
    hypothesis: str
    subs: int = 0
    dels: int = 0
    ins: int = 0
    hits: int = 0
    char_edits: int = 0
    ref_chars: int = 0

    @property
    def empty_reference(self) -> bool:
        return not self.reference

    @property
    def word_edits(self) -> int:
        return self.subs + self.dels + self.ins

    @property
    def ref_words(self) -> int:
        return self.subs + self.dels + self.hits

    @property
    def wer(self) -> float:
        return math.nan if self.empty_reference else self.word_edits / self.ref_words

    @property
    def cer(self) -> float:
        return math.nan if self.empty_reference else self.char_edits / self.ref_chars

    @property
    def catastrophic(self) -> float:
        return math.nan if self.empty_reference else float(self.wer > CATASTROPHIC_WER)


def align(reference: str | None, hypothesis: str | None, language: str) -> Alignment:
    """Normalise both texts and count the edits (nothing is counted for an empty reference)."""
    import jiwer

    ref, hyp = normalise(reference, language), normalise(hypothesis, language)
    if not ref:
        return Alignment(ref, hyp)
    words = jiwer.process_words(ref, hyp)
    chars = jiwer.process_characters(ref, hyp)
    return Alignment(ref, hyp, subs=words.substitutions, dels=words.deletions, ins=words.insertions,
                     hits=words.hits, char_edits=chars.substitutions + chars.deletions + chars.insertions,
                     ref_chars=chars.substitutions + chars.deletions + chars.hits)


@dataclass(frozen=True)
class Corpus:
    wer: float  # sum(S + D + I) / sum(reference words)
    cer: float
    wer_macro: float  # mean of per-utterance WER (upstream's v1 figure, kept for comparison)
    catastrophic_rate: float  # share of scored utterances with WER > 0.5
    subs: int
    dels: int
    ins: int
    ref_words: int
    ref_chars: int
    n_scored: int
    n_empty_ref: int


def corpus(alignments: Sequence[Alignment]) -> Corpus:
    scored = [a for a in alignments if not a.empty_reference]
    empty = len(alignments) - len(scored)
    if not scored:
        nan = math.nan
        return Corpus(nan, nan, nan, nan, 0, 0, 0, 0, 0, 0, empty)
    words = sum(a.ref_words for a in scored)
    chars = sum(a.ref_chars for a in scored)
    return Corpus(wer=sum(a.word_edits for a in scored) / words,
                  cer=sum(a.char_edits for a in scored) / chars,
                  wer_macro=sum(a.wer for a in scored) / len(scored),
                  catastrophic_rate=sum(a.catastrophic for a in scored) / len(scored),
                  subs=sum(a.subs for a in scored), dels=sum(a.dels for a in scored),
                  ins=sum(a.ins for a in scored), ref_words=words, ref_chars=chars,
                  n_scored=len(scored), n_empty_ref=empty)


def row(alignment: Alignment) -> dict:
    """The per-utterance columns the eval stores (any aggregation can be recomputed from them)."""
    a = alignment
    return dict(cer=a.cer, wer=a.wer, catastrophic=a.catastrophic, word_subs=a.subs,
                word_dels=a.dels, word_ins=a.ins, word_edits=float(a.word_edits),
                ref_words=math.nan if a.empty_reference else float(a.ref_words),
                char_edits=float(a.char_edits), ref_chars=math.nan if a.empty_reference else float(a.ref_chars),
                empty_reference=float(a.empty_reference), ref_norm=a.reference, hyp_norm=a.hypothesis)
