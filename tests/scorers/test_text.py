"""CER/WER after the shared normalisation; the pipeline on real speech with pocketsphinx."""
import numpy as np
import pytest

from tests.scorers.speech import ENGLISH, with_noise
from kani_adapt.audio import to_rate
from kani_adapt.scorers import SCORER_RATE
from kani_adapt.scorers.text import error_rates, scoring_text


def test_scoring_text_ignores_case_punctuation_and_spells_numbers():
    assert scoring_text("Ich habe 3 Katzen!", "de") == "ich habe drei katzen"
    assert scoring_text("Don't  STOP, now.", "en") == "don't stop now"
    assert error_rates("Guten Tag, 3 Katzen!", "guten tag drei katzen", "de").cer == 0.0


def test_error_rates_count_edits():
    rates = error_rates("the cat sat", "the cat sit", "en")
    assert rates.wer == pytest.approx(1 / 3)
    assert rates.cer == pytest.approx(1 / 11)
    assert error_rates("", "", "en").cer == 0.0 and error_rates("", "hello", "en").wer == 1.0


def test_languages_without_spaces_get_wer_equal_to_cer():
    rates = error_rates("今天天气很好", "今天天气不好", "zh")
    assert rates.wer == rates.cer == pytest.approx(1 / 6)


@pytest.mark.slow
def test_cer_pipeline_on_real_recogniser_is_low_on_clean_speech_and_higher_under_noise(
        english_clips, tmp_path):
    from tests import asr_doubles as sphinx

    clips, rate = english_clips
    lm = sphinx.sentence_lm(ENGLISH, tmp_path)
    clean, noisy = [], []
    for i, (audio, text) in enumerate(zip(clips, ENGLISH)):
        audio = to_rate(audio, rate, SCORER_RATE)
        clean.append(error_rates(text, sphinx.recognise(audio, lm), "en").cer)
        noisy.append(error_rates(text, sphinx.recognise(with_noise(audio, 5.0, i), lm), "en").cer)
    print(f"pocketsphinx CER clean {np.mean(clean):.3f} {clean}, 5 dB {np.mean(noisy):.3f} {noisy}")
    assert np.mean(clean) < 0.2
    assert np.mean(noisy) > np.mean(clean) + 0.1
