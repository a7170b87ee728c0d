"""Clustered bootstrap and paired comparisons on synthetic scores with known answers."""
import numpy as np
import pytest

from kani_adapt.eval.stats import clustered_bootstrap, excludes_zero, paired


def test_constant_scores_give_a_zero_width_interval():
    got = clustered_bootstrap([0.3] * 12, ["a", "b", "c"] * 4)
    assert got.mean == pytest.approx(0.3) and got.low == pytest.approx(0.3) and got.high == pytest.approx(0.3)
    assert (got.n, got.clusters) == (12, 3)


def test_interval_width_follows_speakers_not_utterances():
    # 10 speakers, 50 identical utterances each: only 10 independent values exist.
    rng = np.random.default_rng(0)
    speaker_means = rng.normal(0, 1, size=10)
    values = np.repeat(speaker_means, 50)
    speakers = np.repeat([f"s{i}" for i in range(10)], 50)
    clustered = clustered_bootstrap(values, speakers, resamples=4000)
    iid = clustered_bootstrap(values, np.arange(500), resamples=4000)
    expected_se = speaker_means.std() / np.sqrt(10)
    assert (clustered.high - clustered.low) / (2 * 1.96) == pytest.approx(expected_se, rel=0.2)
    assert (clustered.high - clustered.low) > 4 * (iid.high - iid.low)


def test_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        speaker_effect = np.repeat(rng.normal(0, 1, 30), 5)
        values = 2.0 + speaker_effect + rng.normal(0, 0.5, 150)
        got = clustered_bootstrap(values, np.repeat(np.arange(30), 5), resamples=500, seed=trial)
        covered += got.low <= 2.0 <= got.high
    assert 0.85 <= covered / 200 <= 0.99


def test_nan_scores_are_left_out():
    got = clustered_bootstrap([1.0, np.nan, 3.0], ["a", "a", "b"])
    assert got.mean == 2.0 and got.n == 2
    assert np.isnan(clustered_bootstrap([np.nan], ["a"]).mean)


def test_paired_difference_and_win_rate_have_known_answers():
    rng = np.random.default_rng(2)
    b = rng.normal(0, 1, 60)
    speakers = np.repeat(np.arange(12), 5)
    better = paired(b + 0.5, b, speakers)
    assert better.diff.mean == pytest.approx(0.5) and better.diff.low == pytest.approx(0.5)
    assert better.win_rate.mean == 1.0
    tied = paired(b, b, speakers)
    assert tied.win_rate.mean == 0.5 and tied.diff.mean == 0.0
    # lower is better (CER): a lower score wins
    assert paired(b - 0.1, b, speakers, higher_is_better=False).win_rate.mean == 1.0


def test_paired_noise_only_difference_is_not_significant_but_a_real_one_is():
    rng = np.random.default_rng(3)
    speakers = np.repeat(np.arange(20), 4)
    base = rng.normal(3, 0.5, 80)
    noise_only = paired(base + rng.normal(0, 0.05, 80), base, speakers)
    real = paired(base + 0.3 + rng.normal(0, 0.05, 80), base, speakers)
    assert not excludes_zero(noise_only.diff) and excludes_zero(real.diff)
    assert real.win_rate.low > 0.9
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0], ["a", "a"])
