"""DNSMOS (real ONNX models from the speechmos wheel) on espeak-ng speech."""
import numpy as np
import pytest

from tests.scorers.speech import with_noise
from kani_adapt.scorers.quality import DNSMOS


@pytest.mark.slow
def test_dnsmos_ranks_clean_above_noisy_above_white_noise(english_clips):
    clips, rate = english_clips
    clips = clips[:2]
    white = [0.1 * np.random.default_rng(i).standard_normal(len(c)).astype(np.float32)
             for i, c in enumerate(clips)]
    model = DNSMOS(threads=1)
    clean, noisy, noise = (model.score(group, rate) for group in
                           (clips, [with_noise(c, 5.0, i) for i, c in enumerate(clips)], white))
    for c, n, w in zip(clean, noisy, noise):
        print(f"P.808 clean {c.p808:.2f} noisy {n.p808:.2f} noise {w.p808:.2f}; "
              f"OVRL {c.ovrl:.2f} {n.ovrl:.2f} {w.ovrl:.2f}; BAK {c.bak:.2f} {n.bak:.2f} {w.bak:.2f}")
        assert c.p808 > n.p808 > w.p808
        assert c.ovrl > n.ovrl > w.ovrl
        assert c.bak > n.bak
        assert 1.0 <= w.p808 and c.p808 <= 5.0  # on the MOS scale


@pytest.mark.slow
def test_dnsmos_resamples_and_gives_nan_for_silence():
    model = DNSMOS(threads=1)
    silent = model.score_one(np.zeros(8000, dtype=np.float32), 8000)
    assert np.isnan(silent.p808)
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(22050) / 22050).astype(np.float32)
    q = model.score_one(tone * 4, 22050)  # louder than full scale: clipped, not refused
    assert 1.0 <= q.p808 <= 5.0
