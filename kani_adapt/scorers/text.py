"""CER and WER with jiwer after the shared per-language normalisation.

Scoring text = ``textnorm.normalise`` (Unicode NFC, language hooks, numbers to words) then case
folding and punctuation removal, so "Guten Tag, 3 Katzen!" and "guten tag drei katzen" match.
Languages written without spaces get WER equal to CER (a word is not a unit there).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Sequence

from kani_adapt.scorers import textnorm

NO_SPACE_LANGUAGES = {"zh", "ja", "th", "lo", "km", "my", "bo"}


@dataclass(frozen=True)
class ErrorRates:
    cer: float  # character edits / reference characters (spaces count as characters)
    wer: float  # word edits / reference words
    reference: str  # the normalised texts that were compared
    hypothesis: str
    # Edit counts and reference lengths, for corpus rates (all edits over all reference units)
    char_edits: int = 0
    chars: int = 0
    word_edits: int = 0
    words: int = 0


def scoring_text(text: str, language: str) -> str:
    text = textnorm.normalise(text, language).casefold()
    # Punctuation and symbols are not spoken; apostrophes inside words are ("don't").
    kept = [" " if unicodedata.category(c)[0] in "PS" and c != "'" else c for c in text]
    return " ".join("".join(kept).replace(" '", " ").replace("' ", " ").split())


def _rate(measure, reference: str, hypothesis: str) -> float:
    if not reference:  # jiwer refuses an empty reference: any output is then all insertions
        return 0.0 if not hypothesis else 1.0
    return float(measure(reference, hypothesis))


def _counts(process, reference: str, hypothesis: str, unit_count: int) -> tuple[int, int]:
    """(edits, reference units); an empty reference: every hypothesis unit is an insertion."""
    if not reference:
        return unit_count, 0
    out = process(reference, hypothesis)
    return out.substitutions + out.deletions + out.insertions, \
        out.hits + out.substitutions + out.deletions


def error_rates(reference: str, hypothesis: str, language: str) -> ErrorRates:
    import jiwer

    ref, hyp = scoring_text(reference, language), scoring_text(hypothesis, language)
    cer = _rate(jiwer.cer, ref, hyp)
    char_edits, chars = _counts(jiwer.process_characters, ref, hyp, len(hyp))
    if language in NO_SPACE_LANGUAGES:
        wer, word_edits, words = cer, char_edits, chars
    else:
        wer = _rate(jiwer.wer, ref, hyp)
        word_edits, words = _counts(jiwer.process_words, ref, hyp, len(hyp.split()))
    return ErrorRates(cer=cer, wer=wer, reference=ref, hypothesis=hyp, char_edits=char_edits,
                      chars=chars, word_edits=word_edits, words=words)


def batch_error_rates(references: Sequence[str], hypotheses: Sequence[str],
                      languages: Sequence[str]) -> list[ErrorRates]:
    return [error_rates(r, h, lang) for r, h, lang in zip(references, hypotheses, languages)]
