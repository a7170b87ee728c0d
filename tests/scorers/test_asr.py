"""The Whisper path end to end on a tiny random Whisper saved and loaded through transformers."""
import numpy as np
import pytest

from kani_adapt.core.errors import CheckpointError, ConfigError
from kani_adapt.scorers.asr import WhisperASR, compression_ratio


def _clips(seconds=(1.0, 2.5, 0.5), seed=0):
    rng = np.random.default_rng(seed)
    return [0.1 * rng.standard_normal(int(16000 * s)).astype(np.float32) for s in seconds]


@pytest.fixture(scope="module")
def asr(tiny_whisper):
    return WhisperASR.load(str(tiny_whisper), device="cpu", batch_size=2)


@pytest.mark.slow
def test_transcribe_returns_text_and_confidence_per_clip(asr):
    out = asr.transcribe(_clips(), 16000, ["en", "de", "en"])
    assert [t.language for t in out] == ["en", "de", "en"]
    for t in out:
        assert isinstance(t.text, str) and t.avg_logprob < 0
        assert 0 <= t.no_speech_prob <= 1 and 0 < t.language_prob < 1
        assert t.compression_ratio == pytest.approx(compression_ratio(t.text))


@pytest.mark.slow
def test_batched_transcription_equals_one_clip_at_a_time(asr):
    clips, langs = _clips(), ["en", "en", "de"]
    batched = asr.transcribe(clips, 16000, langs)
    single = [asr.transcribe([c], 16000, [lang])[0] for c, lang in zip(clips, langs)]
    for b, s in zip(batched, single):
        assert b.text == s.text
        assert b.avg_logprob == pytest.approx(s.avg_logprob, abs=1e-4)
        assert b.no_speech_prob == pytest.approx(s.no_speech_prob, abs=1e-5)


@pytest.mark.slow
def test_avg_logprob_scores_the_greedy_text_higher_than_an_altered_one(asr):
    import torch

    clip = _clips((1.0,))[0]
    t = asr.transcribe([clip], 16000, ["en"])[0]
    ids = list(t.token_ids)
    assert ids, "the tiny model should produce some text"
    with torch.no_grad():
        enc = asr.model.get_encoder()(asr._features([clip])).last_hidden_state
        prompt = asr._prompt("en", {})
        own = asr._avg_logprob(enc, [prompt], [ids])[0]
        other = asr._avg_logprob(enc, [prompt], [[(ids[0] + 7) % 300] + ids[1:]])[0]
    assert own == pytest.approx(t.avg_logprob, abs=1e-3)
    assert other < own
    # independently: the model's log-probability of each text token and of end of text
    eot = asr.processor.tokenizer.eos_token_id
    row = torch.tensor([prompt + ids + [eot]])
    with torch.no_grad():
        logits = asr.model(input_features=asr._features([clip]), decoder_input_ids=row[:, :-1]).logits
    logp = torch.log_softmax(logits[0].float(), -1)
    steps = range(len(prompt) - 1, row.shape[1] - 1)
    expected = float(torch.stack([logp[j, row[0, j + 1]] for j in steps]).mean())
    assert t.avg_logprob == pytest.approx(expected, abs=1e-4)


@pytest.mark.slow
def test_language_identification_is_a_distribution_over_whisper_languages(asr):
    probs = asr.detect_language(_clips((1.0, 2.0)), 16000)
    for p in probs:
        assert set(p) == {"en", "de", "sw", "fr"}
        assert sum(p.values()) == pytest.approx(1.0, abs=1e-5)
    forced = asr.transcribe(_clips((1.0,)), 16000, ["sw"])[0]
    assert forced.language_prob == pytest.approx(probs[0]["sw"], abs=1e-5)


def test_unknown_language_and_missing_folder_fail_with_the_fix(asr, tmp_path):
    with pytest.raises(ConfigError, match="tags: {gsw_zurich: {asr_language: de}}"):
        asr.transcribe(_clips((0.5,)), 16000, ["xx"])
    with pytest.raises(CheckpointError):
        WhisperASR.load(str(tmp_path / "nope"))


def test_compression_ratio_is_high_for_looping_text():
    assert compression_ratio("la " * 60) > 5 > compression_ratio("the quick brown fox jumps over")
