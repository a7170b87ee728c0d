"""Failure detectors on constructed inputs."""
import numpy as np

from kani_adapt.scorers.failures import FailureConfig, detect, repeat_share, silence_share, speaking_rate

RATE = 16000
CFG = FailureConfig()


def _speech(seconds, seed=0):
    return 0.3 * np.random.default_rng(seed).standard_normal(int(RATE * seconds)).astype(np.float32)


def _codes(frames, seed=0):
    return np.random.default_rng(seed).integers(0, 4032, size=(frames, 4))


def test_clean_generation_has_no_failures():
    text = "a" * 28  # 2 s at 14 characters per second
    f = detect(CFG, text=text, audio=_speech(2.0), rate=RATE, codes=_codes(25), transcript="aa")
    assert not f.any and f.reasons == []
    assert f.duration_ratio == np.float64(1.0) or abs(f.duration_ratio - 1.0) < 1e-6


def test_runaway_and_truncation_follow_the_speakers_rate():
    text = "x" * 20
    assert detect(CFG, text=text, audio=_speech(2.0), rate=RATE, chars_per_second=4).truncated
    assert detect(CFG, text=text, audio=_speech(9.0), rate=RATE, chars_per_second=10).runaway
    ok = detect(CFG, text=text, audio=_speech(5.0), rate=RATE, chars_per_second=4)
    assert not ok.truncated and not ok.runaway
    assert speaking_rate(["ab cd", "efgh"], [1.0, 1.0]) == 4.0


def test_looping_codes_are_flagged_and_fresh_codes_are_not():
    loop = np.tile(_codes(3), (20, 1))
    assert repeat_share(loop, 3) > 0.9 and repeat_share(_codes(60), 3) == 0.0
    f = detect(CFG, text="x" * 14, audio=_speech(1.0), rate=RATE, codes=loop)
    assert f.repeated_codes and "repeated_codes" in f.reasons


def test_mostly_silence_length_cap_and_empty_transcript():
    audio = np.concatenate([_speech(0.2), np.zeros(RATE * 2, dtype=np.float32)])
    assert silence_share(audio, RATE, -45) > 0.85
    f = detect(CFG, text="x" * 30, audio=audio, rate=RATE, hit_length_cap=True, transcript="  ")
    assert f.mostly_silence and f.length_cap and f.empty_transcript
    assert not detect(CFG, text="x", audio=_speech(0.1), rate=RATE, transcript=None).empty_transcript


def test_no_frames_at_all_have_no_repeats_and_are_caught_as_truncated():
    assert repeat_share(np.zeros((0, 4), dtype=np.int64), 3) == 0.0
    f = detect(FailureConfig(), text="a sentence of some length", audio=np.zeros(0, np.float32),
               rate=22050, codes=np.zeros((0, 4), dtype=np.int64))
    assert f.truncated and f.repeat_share == 0.0
