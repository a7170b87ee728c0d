"""Language and accent identification: Whisper's language probability and an audio classifier."""
import numpy as np
import pytest

from kani_adapt.core.errors import ConfigError
from kani_adapt.scorers.langid import AccentClassifier, whisper_language_prob


@pytest.mark.slow
def test_whisper_language_prob_picks_each_clips_expected_language(tiny_whisper):
    from kani_adapt.scorers.asr import WhisperASR

    asr = WhisperASR.load(str(tiny_whisper), device="cpu")
    clip = 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    dist = asr.detect_language([clip], 16000)[0]
    got = whisper_language_prob(asr, [clip, clip, clip], 16000, ["de", "sw", None])
    assert got[:2] == pytest.approx([dist["de"], dist["sw"]])
    assert np.isnan(got[2])
    with pytest.raises(ConfigError):
        whisper_language_prob(asr, [clip], 16000, ["xx"])


@pytest.fixture(scope="module")
def accent_folder(tmp_path_factory):
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForSequenceClassification

    from kani_adapt.models.speaker.embedder import TINY_WAVLM

    folder = tmp_path_factory.mktemp("accent") / "clf"
    torch.manual_seed(0)
    config = WavLMConfig(**TINY_WAVLM, num_labels=2, id2label={0: "hessian", 1: "standard"},
                         label2id={"hessian": 0, "standard": 1}, classifier_proj_size=8)
    WavLMForSequenceClassification(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(return_attention_mask=True).save_pretrained(folder)
    return folder


def test_accent_classifier_reports_top_label_against_expected_label(accent_folder):
    clf = AccentClassifier.load(str(accent_folder), {"de_hessian": "hessian", "de": "standard"},
                                device="cpu")
    clips = [0.1 * np.random.default_rng(i).standard_normal(8000 + 4000 * i).astype(np.float32)
             for i in range(3)]
    out = clf.predict(clips, 16000, ["de_hessian", "de", "en"])
    assert [p.expected for p in out] == ["hessian", "standard", None]
    for p in out[:2]:
        assert p.label in {"hessian", "standard"} and p.correct == (p.label == p.expected)
    assert out[2].correct is None


def test_accent_classifier_refuses_labels_it_does_not_have(accent_folder):
    with pytest.raises(ConfigError, match="glasgow"):
        AccentClassifier.load(str(accent_folder), {"en_glasgow": "glasgow"}, device="cpu")
