"""Phoneme error rate: espeak-ng's phonemes of the text, the stated folding on both sides, the
arithmetic, honest gaps, and a twin CTC phoneme recogniser loaded through the real code."""
import math

import numpy as np
import pytest

from kani_adapt.scorers import phonemes
from kani_adapt.scorers.config import ScorerConfig
from kani_adapt.scorers.registry import Clip, Setup

VOCAB = {"ɪ", "t", "z", "ə", "l", "ʌ", "v", "i", "d", "eɪ", "a", "ɪ", "ɔ", "s"}


def test_espeak_phonemises_in_the_tags_language_after_the_text_frontend():
    english = phonemes.espeak_phones("it is 2", "en")
    german = phonemes.espeak_phones("es ist 2", "de")
    assert english[:4] == ("ɪ", "t", "ɪ", "z") and english[-2:] == ("t", "ˈuː")  # "two": spelled
    assert german != english and "ts" in "".join(german)  # "zwei"


def test_folding_removes_marks_maps_the_listed_phones_and_counts_what_cannot_be_heard():
    folded, unheard = phonemes.fold(["ˈeɪ", "ɐ", "ʔ", "ɔː", "ts", "θ"], VOCAB)
    # stress off; ɐ -> ə (listed); ʔ dropped (listed); ɔː without its length mark; ts split
    # into vocabulary pieces; θ is not in the vocabulary: left out and counted
    assert folded == ["eɪ", "ə", "ɔ", "t", "s"] and unheard == 1


def test_phone_edits_are_levenshtein_over_phones():
    assert phonemes.edits(["a", "b", "c"], ["a", "c"]) == 1
    assert phonemes.edits(["eɪ"], ["e", "ɪ"]) == 2  # a diphthong is one phone
    assert phonemes.edits([], ["a"]) == 1


class _Heard:
    """A recogniser double: hears fixed phone tokens (the arithmetic is under test)."""

    def __init__(self, tokens):
        self._tokens = tokens

    def vocabulary(self):
        return VOCAB

    def tokens(self, audios, rate, languages=None):
        return self._tokens


def test_per_rows_and_an_unknown_language_is_not_measured():
    clips = [Clip(np.zeros(160, np.float32), "it is a lovely day", "s", "en"),
             Clip(np.zeros(160, np.float32), "hello", "s", "xx_accent")]
    rows = [{}, {}]
    heard = [["ɪ", "t", "ɪ", "z", "ə", "l", "ʌ", "v", "l", "i", "d", "eɪ"], ["a"]]
    phonemes.score(_Heard(heard), Setup(ScorerConfig()), clips, 16000, rows)
    assert rows[0]["per"] == 0.0 and rows[0]["ref_phones"] == 12 and rows[0]["per_reason"] == ""
    assert math.isnan(rows[1]["per"]) and rows[1]["per_reason"].startswith("not measured: ")
    assert "xx" in rows[1]["per_reason"]
    heard[0] = heard[0][:-2]  # "day" lost its vowel and d: 2 deletions of 12
    phonemes.score(_Heard(heard), Setup(ScorerConfig()), clips[:1], 16000, rows[:1])
    assert rows[0]["per"] == pytest.approx(2 / 12) and rows[0]["per_edits"] == 2


@pytest.mark.slow
def test_the_twin_phoneme_recogniser_scores_through_the_registry(tmp_path, english_clips):
    from tests.scorers.ctc_twins import phoneme_recogniser
    from kani_adapt.scorers.registry import Scorers
    from tests.scorers.speech import ENGLISH

    folder = phoneme_recogniser(tmp_path / "phon")
    scorers = Scorers(ScorerConfig(dnsmos=False, phoneme_model=str(folder)), "cpu")
    audios, rate = english_clips
    clips = [Clip(a, t, f"s{i}", "en") for i, (a, t) in enumerate(zip(audios, ENGLISH))]
    rows = scorers.score(clips, rate)
    assert all(r["ref_phones"] > 10 and 0 <= r["per_unheard"] < 0.2 for r in rows)
    assert all(r["per"] == r["per_edits"] / r["ref_phones"] for r in rows)
    alone = [scorers.score([c], rate)[0]["per"] for c in clips]  # batched == one at a time
    assert alone == [r["per"] for r in rows]
