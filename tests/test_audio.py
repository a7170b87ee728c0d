"""The project's one audio reader: mono, resampling, windows, and one-line reasons for bad files."""
import numpy as np
import pytest
import soundfile as sf

from kani_adapt import audio
from kani_adapt.codec.manifest import load_audio


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_stereo_is_averaged_and_resampled(tmp_path):
    left, right = tone(1.0, 8000), np.zeros(8000, dtype=np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1), 8000, subtype="FLOAT")
    got = audio.read(tmp_path / "s.wav", 16000)
    assert (got.sample_rate, got.orig_sample_rate, got.channels) == (16000, 8000, 2)
    assert len(got.audio) == 16000 and got.audio.dtype == np.float32
    assert np.abs(got.audio).max() == pytest.approx(0.25, abs=0.01)


def test_a_window_is_cut_at_the_target_rate(tmp_path):
    sf.write(tmp_path / "t.wav", tone(2.0, 8000), 8000, subtype="FLOAT")
    assert len(load_audio(tmp_path / "t.wav", 16000, max_seconds=0.5, offset_seconds=1.0)) == 8000
    assert len(audio.read(tmp_path / "t.wav").audio) == 16000


@pytest.mark.parametrize("content, reason", [
    ("junk", audio.UNREADABLE), ("empty", audio.EMPTY), ("nan", audio.NOT_FINITE)])
def test_bad_files_raise_one_line_with_their_reason(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    if content == "junk":
        path.write_bytes(b"not audio")
    else:
        data = np.zeros(0 if content == "empty" else 100, dtype=np.float32)
        data[:1] = np.nan
        sf.write(path, data, 8000, subtype="FLOAT")
    with pytest.raises(audio.AudioReadError) as err:
        audio.read(path)
    assert err.value.reason == reason and str(path) in str(err.value) and "\n" not in str(err.value)


def test_resampling_the_same_rate_is_a_float32_copy():
    samples = np.ones(4, dtype=np.float64)
    out = audio.resample(samples, 100, 100)
    assert out.dtype == np.float32 and out is not samples


def test_trim_silence_keeps_the_speech_and_a_pad_and_matched_sets_the_loudness():
    from kani_adapt.audio import loudness, matched, trim_silence

    rate = 16000
    t = np.arange(rate) / rate
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    quiet = np.full(rate // 2, 1e-4, dtype=np.float32)  # room noise, 66 dB under the tone
    padded = np.concatenate([quiet, tone, quiet, quiet])
    cut = trim_silence(padded, rate, pad_seconds=0.1)
    assert abs(len(cut) - (rate + 2 * 0.1 * rate)) <= 2 * 0.02 * rate  # the tone and its pads
    assert np.allclose(cut[int(0.1 * rate) + 400:int(0.1 * rate) + 800], tone[400:800], atol=0.05)
    assert len(trim_silence(np.zeros(rate, np.float32), rate)) == rate  # silence: unchanged
    assert abs(loudness(matched(tone, rate, -30.0), rate) - -30.0) < 0.1
    assert abs(loudness(matched(tone * 0.01, rate, -30.0), rate) - -30.0) < 0.1
