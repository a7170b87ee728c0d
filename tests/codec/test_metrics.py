import math

import numpy as np
import pytest

from kani_adapt.codec import metrics
from tests.codec.corpus import SR, tone


@pytest.fixture(scope="module")
def ref():
    return tone(2.0, 180)


def test_identical_signals_have_zero_distances_and_top_scores(ref):
    scores = metrics.all_metrics(ref, ref, SR)
    assert scores["mel"] == 0 and scores["stft"] == 0
    assert scores["si_sdr"] > 60 and scores["stoi"] > 0.99


def test_si_sdr_ignores_scale_but_mel_does_not(ref):
    assert metrics.si_sdr(ref, 0.5 * ref) > 60
    assert metrics.mel_distance(ref, 0.5 * ref, SR) == pytest.approx(np.log10(2), rel=0.05)


def test_noise_scores_worse_than_a_lightly_noised_copy(ref):
    rng = np.random.default_rng(1)
    light = ref + 0.005 * rng.standard_normal(len(ref))
    noise = 0.2 * rng.standard_normal(len(ref))
    for name in ("mel", "stft"):
        assert getattr(metrics, f"{name}_distance")(ref, light, *([SR] if name == "mel" else [])) < \
            getattr(metrics, f"{name}_distance")(ref, noise, *([SR] if name == "mel" else []))
    assert metrics.si_sdr(ref, noise) < 0 < 20 < metrics.si_sdr(ref, light)
    assert metrics.stoi(ref, noise, SR) < 0.3 < 0.9 < metrics.stoi(ref, light, SR)


def test_si_sdr_of_known_mixture_matches_its_energy_ratio():
    rng = np.random.default_rng(2)
    s = rng.standard_normal(SR)
    n = rng.standard_normal(SR)
    n -= n.mean() + (np.dot(n - n.mean(), s - s.mean()) / np.dot(s - s.mean(), s - s.mean())) * (s - s.mean())
    mixture = s + 0.1 * n
    expected = 10 * np.log10(np.sum((s - s.mean()) ** 2) / np.sum((0.1 * n) ** 2))
    assert metrics.si_sdr(s, mixture) == pytest.approx(expected, abs=0.01)


def test_estimate_is_cut_or_padded_to_the_reference(ref):
    padded = np.concatenate([ref, np.ones(1764)])
    assert metrics.mel_distance(ref, padded, SR) == 0
    assert metrics.si_sdr(ref, padded) > 60


def test_stoi_of_too_short_clip_is_nan():
    short = tone(0.2, 200)
    assert math.isnan(metrics.stoi(short, short, SR))
