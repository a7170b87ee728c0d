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
