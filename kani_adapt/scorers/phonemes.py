"""Phoneme error rate: what a CTC phoneme recogniser hears against espeak-ng's phonemes of the
text, in the text's language.

Where Whisper is weak (a language it barely knows, an accent whose words its language model
repairs), a phone-level recogniser without a language model says which sounds came out. The
default model, ``facebook/wav2vec2-xlsr-53-espeak-cv-ft``, emits espeak IPA: it was trained on
espeak-ng's phonemes of Common Voice, so its agreement with espeak-ng is one source, not two,
and a low PER means "sounds like espeak's reading", not "sounds native".

Reference: the text through the project's text frontend (numbers spelled as the model read
them), then ``espeak-ng -q --ipa --sep=_ -v <language>``; words split on spaces, phones on ``_``.

Folding, the same on both sides (:func:`fold`):

1. the marks in :data:`MARKS` are removed (stress, secondary stress, syllable break, linking,
   tie bars, syllabic and non-syllabic diacritics): the recogniser is not scored on prosody;
2. each phone in :data:`FOLDS` becomes its listed neighbour (espeak's reduced vowels and
   r-coloured vowels, which the recogniser's training labels merge);
3. a phone the recogniser's vocabulary does not have is tried without its length mark, then
   split into the longest vocabulary pieces; what still is not in the vocabulary is left out
   and counted (``per_unheard``: the share of reference phones the recogniser cannot hear).

PER = phone edits / reference phones; the report gives the corpus PER (all edits over all
reference phones) and each clip's PER over the median PER of the recordings of its tag
(``per_relative``: 1 = as recognisable as the real speech; phone error rates of real speech
differ from 0.11 to 0.48 between languages, so only the relative figure compares languages).
"""
from __future__ import annotations

import math
import subprocess
from functools import lru_cache

from kani_adapt.core.errors import ConfigError

MARKS = "ˈˌ.‿\u0361\u035c\u0329\u032f\u200d"  # stress, syllable, linking, ties, (non-)syllabic, ZWJ
LENGTH = "ː"
# espeak's reduced and r-coloured vowels and dark l to their plain neighbours; the glottal stop,
# which espeak writes for some languages and not others, out
FOLDS = {"ɐ": "ə", "ᵻ": "ɪ", "ɚ": "əɹ", "ɝ": "ɜɹ", "ɫ": "l", "ʔ": ""}


@lru_cache(maxsize=4096)
def espeak_phones(text: str, language: str) -> tuple[str, ...]:
    """espeak-ng's phones of ``text`` (after the text frontend), marks and all."""
    from kani_adapt.core.espeak import require
    from kani_adapt.text.frontend import normalize

    spoken = normalize(text, language)
    if not spoken.strip():
        return ()
    done = subprocess.run([require(), "-q", "--ipa", "--sep=_", "-v", language, spoken],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"espeak-ng has no voice for language {language!r} "
                          f"({done.stderr.strip()[:120]}); PER is not measured for it")
    return tuple(p for word in done.stdout.split() for p in word.split("_") if p)


def fold(phones, vocabulary: set[str]) -> tuple[list[str], int]:
    """(folded phones, how many reference phones could not be heard): see the module docstring."""
    out, unheard = [], 0
    for phone in phones:
        bare = "".join(c for c in phone if c not in MARKS)
        bare = FOLDS.get(bare, bare)
        if not bare:
            continue
        pieces = _pieces(bare, vocabulary) or _pieces(bare.replace(LENGTH, ""), vocabulary)
        if pieces is None:
            unheard += 1
            continue
        out += pieces
    return out, unheard


def _pieces(phone: str, vocabulary: set[str]) -> list[str] | None:
    """``phone`` as the longest vocabulary pieces from the left; None when a part has none."""
    if not phone:
        return None
    pieces, start = [], 0
    while start < len(phone):
        end = next((e for e in range(len(phone), start, -1) if phone[start:e] in vocabulary), None)
        if end is None:
            return None
        pieces.append(phone[start:end])
        start = end
    return pieces


def edits(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two phone sequences."""
    previous = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        current = [i]
        for j, h in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


# --- the scorer (its registry entry: "phonemes") ---

def load_scorer(setup, device: str):
    from kani_adapt.scorers.ctc import CTCRecogniser

    return CTCRecogniser.load(setup.cfg.phoneme_model, device, setup.cfg.batch_size)


def score(model, setup, clips, rate: int, rows: list[dict]) -> None:
    """per, per_edits, ref_phones, per_unheard of every clip; a clip whose language espeak-ng
    cannot phonemise gets per_reason "not measured: ..." and NaN figures."""
    vocabulary = model.vocabulary()
    heard = model.tokens([c.audio for c in clips], rate)
    for row, clip, tokens in zip(rows, clips, heard):
        language = setup.language(clip.tag)
        try:
            ref, unheard = fold(espeak_phones(clip.text, language), vocabulary)
        except ConfigError as err:
            row.update(per=math.nan, per_edits=math.nan, ref_phones=math.nan, per_unheard=math.nan,
                       per_reason=f"not measured: {err}")
            continue
        hyp, _ = fold(tokens, vocabulary)
        n = len(ref)
        e = edits(ref, hyp)
        row.update(per=e / n if n else math.nan, per_edits=float(e) if n else math.nan,
                   ref_phones=float(n) if n else math.nan,
                   per_unheard=unheard / (n + unheard) if n + unheard else math.nan,
                   phones_heard=" ".join(hyp), per_reason="")
