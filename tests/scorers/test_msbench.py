"""Conformance with upstream's benchmark protocol (make-speech-benchmark v2): on fixed reference /
hypothesis pairs, the normalised texts, WER, CER and catastrophic figures are counted by hand here
and must match kani-adapt's, both from the protocol module and through the eval's ASR scorer and
corpus rates."""
import math
from types import SimpleNamespace

import pandas as pd
import pytest

from kani_adapt.scorers import msbench

# (language, reference, hypothesis, normalised reference, normalised hypothesis,
#  S, D, I, reference words, character edits, reference characters) -- counted by hand
PAIRS = [
    # numbers: spelled in the text's language on both sides
    ("en", "I have 3 cats.", "i have three cats", "i have three cats", "i have three cats",
     0, 0, 0, 4, 0, 17),
    ("de", "Es kostet 3 Euro!", "es kostet drei euro", "es kostet drei euro", "es kostet drei euro",
     0, 0, 0, 4, 0, 19),
    # punctuation: each listed character becomes a space, whitespace collapses
    ("en", "Hello, world!  A state-of-the-art «model»…", "hello world a state of the art model",
     "hello world a state of the art model", "hello world a state of the art model", 0, 0, 0, 8, 0, 36),
    # the ASCII apostrophe is kept (one word "don't"); exactly half the words wrong is not
    # catastrophic (strictly above 0.5)
    ("en", "Don't stop.", "dont stop", "don't stop", "dont stop", 1, 0, 0, 2, 1, 10),
    # the typographic apostrophe is in the punctuation list: "don’t" becomes two words
    ("en", "Don’t stop", "don't stop", "don t stop", "don't stop", 1, 1, 0, 3, 1, 10),
    # diacritics are kept: año is not ano
    ("es", "El año pasado.", "el ano pasado", "el año pasado", "el ano pasado", 1, 0, 0, 3, 1, 13),
    # an empty hypothesis: every word deleted
    ("en", "The bus leaves at nine.", "", "the bus leaves at nine", "", 0, 5, 0, 5, 22, 22),
    # a looping hypothesis: every repeat an insertion (the space between repeats too)
    ("en", "Good morning", "good morning good morning good morning", "good morning",
     "good morning good morning good morning", 0, 0, 4, 2, 26, 12),
]
EMPTY = ("en", "…!?", "hello there")  # a reference that normalises to nothing


@pytest.mark.parametrize("lang, ref, hyp, ref_norm, hyp_norm, s, d, i, words, cedits, chars", PAIRS)
def test_each_pair_is_normalised_and_counted_as_by_hand(lang, ref, hyp, ref_norm, hyp_norm, s, d, i,
                                                        words, cedits, chars):
    a = msbench.align(ref, hyp, lang)
    assert (a.reference, a.hypothesis) == (ref_norm, hyp_norm)
    assert (a.subs, a.dels, a.ins, a.ref_words) == (s, d, i, words)
    assert (a.char_edits, a.ref_chars) == (cedits, chars)
    assert a.wer == pytest.approx((s + d + i) / words)
    assert a.cer == pytest.approx(cedits / chars)
    assert a.catastrophic == float((s + d + i) / words > 0.5)


def test_an_empty_reference_is_counted_apart_never_scored():
    a = msbench.align(EMPTY[1], EMPTY[2], EMPTY[0])
    assert a.empty_reference and math.isnan(a.wer) and math.isnan(a.cer) and math.isnan(a.catastrophic)
    every = [msbench.align(r, h, lang) for lang, r, h, *_ in PAIRS] + [a]
    c = msbench.corpus(every)
    assert (c.n_scored, c.n_empty_ref) == (len(PAIRS), 1)


# corpus figures by hand from the table: word edits 0+0+0+1+2+1+5+4 = 13 over
# 4+4+8+2+3+3+5+2 = 31 reference words; character edits 0+0+0+1+1+1+22+26 = 51 over
# 17+19+36+10+10+13+22+12 = 139; catastrophic: "don t stop" (2/3), the empty hypothesis (1.0) and
# the loop (2.0) are above 0.5, "don't stop" (exactly 0.5) is not: 3 of 8
HAND_WER, HAND_CER, HAND_CATASTROPHIC = 13 / 31, 51 / 139, 3 / 8
HAND_MACRO = (0 + 0 + 0 + 0.5 + 2 / 3 + 1 / 3 + 1.0 + 2.0) / 8


def test_corpus_figures_match_the_hand_counts():
    c = msbench.corpus([msbench.align(r, h, lang) for lang, r, h, *_ in PAIRS]
                       + [msbench.align(*EMPTY[1:], EMPTY[0])])
    assert c.wer == pytest.approx(HAND_WER) and c.cer == pytest.approx(HAND_CER)
    assert c.catastrophic_rate == pytest.approx(HAND_CATASTROPHIC)
    assert c.wer_macro == pytest.approx(HAND_MACRO)
    assert (c.subs, c.dels, c.ins) == (3, 6, 4)


class _Heard:
    """An ASR double that 'hears' the given hypotheses (the scorer's arithmetic is under test)."""

    def __init__(self, texts):
        self.texts = texts

    def transcribe(self, audios, rate, languages):
        return [SimpleNamespace(text=t, language_prob=1.0, avg_logprob=0.0, no_speech_prob=0.0,
                                compression_ratio=1.0) for t in self.texts]


def test_the_eval_reports_the_same_figures_under_protocol_msbench():
    import numpy as np

    from kani_adapt.eval import protocol, report
    from kani_adapt.scorers.config import ScorerConfig
    from kani_adapt.scorers.registry import Clip, Setup, _score_asr

    cases = [*PAIRS, (*EMPTY, "", "", 0, 0, 0, 0, 0, 0)]
    clips = [Clip(audio=np.zeros(160, np.float32), text=ref, speaker=f"s{k % 3}", tag=lang)
             for k, (lang, ref, *_rest) in enumerate(cases)]
    rows = [{} for _ in clips]
    _score_asr(_Heard([c[2] for c in cases]), Setup(ScorerConfig(), protocol="msbench"), clips, 16000, rows)
    for row, case in zip(rows[:-1], PAIRS):  # S/D/I stored per utterance
        assert (row["word_subs"], row["word_dels"], row["word_ins"]) == case[5:8]
    assert rows[-1]["empty_reference"] == 1.0 and math.isnan(rows[-1]["catastrophic"])
    df = pd.DataFrame([dict(r, checkpoint="m", item=str(k), sample=0, speaker=c.speaker, tag="t")
                       for k, (r, c) in enumerate(zip(rows, clips))])
    rates = protocol.corpus_rates(df, resamples=50)["m"]
    assert rates["corpus_wer"]["all"]["mean"] == pytest.approx(HAND_WER)
    assert rates["corpus_cer"]["all"]["mean"] == pytest.approx(HAND_CER)
    summary = report.summarise(df, ["catastrophic"], resamples=50)["m"]
    assert summary["catastrophic"]["all"]["mean"] == pytest.approx(HAND_CATASTROPHIC)
    assert summary["catastrophic"]["all"]["n"] == len(PAIRS)  # the empty reference is not in it
    assert protocol.msbench_section(df)["m"]["n_empty_ref"] == 1


def test_kani_protocol_differs_where_upstream_says_so():
    """The default normaliser folds case fully (ß -> ss) and drops every symbol; upstream's
    lower-cases and removes only its list: the two protocols are not interchangeable."""
    from kani_adapt.scorers.text import scoring_text

    assert scoring_text("Die Straße ©", "de") == "die strasse"
    assert msbench.normalise("Die Straße ©", "de") == "die straße ©"
