"""Upstream's audio preparation on real espeak-ng speech: 1 s of silence either side, 44.1 kHz in,
16 kHz out, trimmed at the VAD's speech edges with 50 ms kept, the peak at -1 dBFS."""
import numpy as np
import pytest

from kani_adapt.scorers import msbench_audio
from tests.scorers.speech import speak

VAD_WINDOW = 512 / 16000  # silero decides per 32 ms window
SILERO_PAD = 0.03  # get_speech_timestamps' own default pad, which upstream keeps too


@pytest.fixture(scope="module")
def padded_speech(tmp_path_factory):
    import soxr

    speech, rate = speak("it is a lovely day for a walk by the river", tmp_path_factory.mktemp("prep"))
    loud = np.flatnonzero(np.abs(speech) > 0.01 * np.abs(speech).max())
    speech = speech[loud[0]:loud[-1] + 1]  # espeak's own edges off: the speech alone
    at44 = soxr.resample(speech, rate, 44100).astype(np.float32)
    second = np.zeros(44100, np.float32)
    return np.concatenate([second, 0.3 * at44, second]), len(at44) / 44100


@pytest.mark.slow
def test_prepared_clip_is_16k_trimmed_to_the_speech_and_peaks_at_minus_one_dbfs(padded_speech):
    clip, speech_seconds = padded_speech
    out = msbench_audio.prepare(clip, 44100)
    assert out.dtype == np.float32
    assert 20 * np.log10(np.abs(out).max()) == pytest.approx(-1.0, abs=1e-3)
    # where the speech lies in the output: the first and last samples above 1 % of the peak
    loud = np.flatnonzero(np.abs(out) > 0.01 * np.abs(out).max())
    lead, tail = loud[0] / 16000, (len(out) - 1 - loud[-1]) / 16000
    # the cut is the VAD's speech start minus 50 ms (and its end plus 50 ms): what is left of
    # each second of silence is those 50 ms, the VAD's own 30 ms pad and its 32 ms resolution
    assert 0.05 - 0.01 <= lead <= 0.05 + SILERO_PAD + VAD_WINDOW + 0.01, lead
    assert 0.05 - 0.01 <= tail <= 0.05 + SILERO_PAD + 4 * VAD_WINDOW, tail
    assert len(out) / 16000 == pytest.approx(speech_seconds + lead + tail, abs=2 / 16000)
    assert len(out) / 16000 < speech_seconds + 0.4  # the two seconds of silence are gone


@pytest.mark.slow
def test_interior_pauses_are_kept(padded_speech):
    clip, _ = padded_speech
    pause = np.zeros(int(0.6 * 44100), np.float32)
    middle = len(clip) // 2
    out = msbench_audio.prepare(np.concatenate([clip[:middle], pause, clip[middle:]]), 44100)
    alone = msbench_audio.prepare(clip, 44100)
    assert len(out) / 16000 == pytest.approx(len(alone) / 16000 + 0.6, abs=0.05)


def test_silence_is_kept_whole_and_stereo_is_folded():
    quiet = np.zeros((44100, 2), np.float32)
    out = msbench_audio.prepare(quiet, 44100)
    assert out.shape == (16000,) and not out.any()  # no speech: nothing trimmed, no gain
