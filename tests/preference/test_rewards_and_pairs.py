"""The reward is upstream's formula with a two-sided duration penalty, the chosen passes every
gate, the rejected is the worst failing rollout, margins and pairs per group hold, dropped
groups are counted; the duration model is fitted per language; prompt files are checked."""
import json

import pytest

from kani_adapt.config.load import load_config
from kani_adapt.core.errors import DataError
from kani_adapt.preference import prompts, reward
from kani_adapt.preference.config import PairsConfig, PreferConfig, RewardConfig
from kani_adapt.preference.duration import fit

R, P = RewardConfig(), PairsConfig()


def score(seconds, wer=0.0, text="ja", truncated=False, expected=1.0):
    return reward.Score(text, wer, wer, seconds, expected, truncated)


def test_the_reward_follows_upstreams_formula_on_both_sides_of_the_window():
    assert reward.reward(score(1.0), R) == 0.0
    assert reward.reward(score(3.0, wer=0.5), R) == pytest.approx(-0.5 - 0.5 * 1.0)  # 1 s over 2x
    assert reward.reward(score(0.2), R) == pytest.approx(-2.0)  # below 0.3x: the short side
    assert reward.reward(score(0.0, wer=1.0, text=""), R) == pytest.approx(-1.0 - 2.0 - 2.0)
    assert reward.failures(score(1.0), R, P) == []
    assert reward.failures(score(5.0, truncated=True), R, P) == ["truncated", "long"]
    assert reward.failures(score(0.1, text=" "), R, P) == ["empty", "short"]
    assert reward.failures(score(1.0, wer=0.3), R, P) == ["wer"]


def test_pairs_take_the_best_passing_against_the_worst_failing_with_a_margin():
    values = [0.0, -0.1, -3.0, -0.2, -1.0, -0.4]
    passing = [True, True, False, True, False, False]
    found, outcome = reward.choose(values, passing, P)
    assert outcome == "paired" and found == [(0, 2), (1, 4)]  # at most two per group
    found, _ = reward.choose(values, passing, PairsConfig(margin=1.5, per_group=3))
    assert found == [(0, 2)]  # only gaps of 1.5 or more
    assert reward.choose([-1.0, -2.0], [False, False], P) == ([], "no_passing")
    assert reward.choose([0.0, 0.0], [True, True], P) == ([], "no_failing")
    assert reward.choose([0.0, -0.1], [True, False], P) == ([], "no_margin")
    assert reward.tally(["paired", "no_passing", "no_passing"]) == {
        "paired": 1, "no_passing": 2, "no_failing": 0, "no_margin": 0}


def test_the_duration_model_recovers_a_linear_law_and_refuses_too_few_rows():
    words = [1, 2, 3, 5, 8, 13]
    tokens = [2, 3, 5, 6, 11, 15]
    seconds = [0.5 + 0.3 * w + 0.05 * t for w, t in zip(words, tokens)]
    model = fit(words, tokens, seconds, "sw")
    assert model.intercept == pytest.approx(0.5) and model.per_word == pytest.approx(0.3)
    assert model.per_token == pytest.approx(0.05) and model.rmse < 1e-9
    assert model.expected(4, 5) == pytest.approx(0.5 + 1.2 + 0.25)
    with pytest.raises(DataError, match="'sw': 2 row"):
        fit([1, 2], [1, 2], [0.1, 0.2], "sw")
    # collinear words and tokens never give a negative coefficient
    collinear = fit([1, 2, 3, 4], [2, 4, 6, 8], [0.3, 0.5, 0.7, 0.9], "de")
    assert collinear.per_word >= 0 and collinear.per_token >= 0
    assert collinear.expected(5, 10) == pytest.approx(1.1)


def test_built_in_prompt_sets_cover_every_kind_and_short_texts_are_short():
    for language in ("de", "en", "sw"):
        found = prompts.built_in(language, language)
        assert {p.kind for p in found} >= set(prompts.SHORT_KINDS) | {"casual", "long"}
        assert all(1 <= p.words <= 6 for p in found if p.kind in prompts.SHORT_KINDS)
        train, held = prompts.split(found, 0.25, 0)
        assert held and {p.kind for p in train} == {p.kind for p in found}
    with pytest.raises(DataError, match="no built-in set"):
        prompts.built_in("xx", "xx")


def test_a_bad_prompt_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"text": "ja", "kind": "short"}) + "\n" +
                    json.dumps({"text": "nein", "kind": "slang"}) + "\n")
    with pytest.raises(DataError, match=r"p.jsonl line 2: .*kind among"):
        prompts.read_file(path, "de")


def test_the_config_is_upstreams_by_default():
    cfg = load_config(PreferConfig, None, ["run_dir=r", "policy=p", "dataset=d"])
    assert (cfg.sample.rollouts, cfg.sample.temperature, cfg.sample.cap_min, cfg.sample.cap_max) == (8, 0.4, 80, 300)
    assert (cfg.reward.wer, cfg.reward.over, cfg.reward.short, cfg.reward.empty) == (1.0, 0.5, 2.0, 2.0)
    assert (cfg.pairs.max_wer, cfg.pairs.margin, cfg.pairs.per_group, cfg.train.beta) == (0.2, 0.5, 2, 2.0)


def test_the_similarity_term_weighs_the_voice_only_when_asked_for_and_measured():
    on = RewardConfig(similarity=0.5)
    near = reward.Score("ja", 0.0, 0.0, 1.0, 1.0, False, similarity=0.8)
    far = reward.Score("ja", 0.0, 0.0, 1.0, 1.0, False, similarity=0.2)
    assert reward.reward(near, on) == pytest.approx(-0.1) and reward.reward(far, on) == pytest.approx(-0.4)
    assert reward.reward(far, R) == 0.0  # off by default
    assert reward.reward(score(1.0), on) == 0.0  # not measured (an unconditioned rollout): no term
    # everything else equal, the nearer voice wins a pair against a failing rollout by more
    failing = reward.Score("", 1.0, 1.0, 1.0, 1.0, False, similarity=0.2)
    found, _ = reward.choose([reward.reward(s, on) for s in (far, near, failing)], [True, True, False], P)
    assert found == [(1, 2)]


def test_rollouts_with_no_voice_to_compare_count_as_dissimilar_and_a_missing_measure_is_refused():
    import numpy as np

    from kani_adapt.core.errors import ConfigError
    from kani_adapt.preference import stages
    from kani_adapt.preference.prompts import Prompt
    from kani_adapt.preference.rollouts import Rollout

    voice = np.ones(128, np.float32)
    rolled = [Rollout("g", Prompt("ja", "word", "de"), "train", "a", emb, [1], 1.0, 80, codes, False)
              for emb, codes in ((voice, np.zeros((3, 4), np.int64)), (voice, np.zeros((0, 4), np.int64)),
                                 (None, np.zeros((3, 4), np.int64)))]
    cfg = load_config(PreferConfig, None, ["run_dir=r", "policy=p", "dataset=d", "reward.similarity=0.5"])
    measured = stages.similarities(rolled, lambda codes, voices: [0.7 if len(c) and v is not None else float("nan")
                                                                  for c, v in zip(codes, voices)], cfg)
    assert measured[:2] == [0.7, 0.0] and measured[2] != measured[2]
    with pytest.raises(ConfigError, match="reward.similarity"):
        stages.similarities(rolled, None, cfg)
    off = load_config(PreferConfig, None, ["run_dir=r", "policy=p", "dataset=d"])
    assert all(m != m for m in stages.similarities(rolled, None, off))


@pytest.mark.slow
def test_the_voice_match_is_the_embedders_cosine_of_the_decoded_rollout_to_the_voice_given(tmp_path):
    import numpy as np
    import torch

    from kani_adapt.codec.nanocodec import load_codec
    from kani_adapt.preference.rollouts import codec_voice_match
    from kani_adapt.scorers.similarity import SpeakerSimilarity, cosine
    from tests.helpers import tiny_embedder_folder

    codec = load_codec("tiny")
    similarity = SpeakerSimilarity.load(str(tiny_embedder_folder(tmp_path / "emb")), "kani", "cpu")
    rng = np.random.default_rng(0)
    codes = [rng.integers(0, 4032, (n, 4)) for n in (20, 12, 0)]
    voices = [rng.normal(size=128).astype(np.float32), rng.normal(size=128).astype(np.float32), None]
    got = codec_voice_match(codec, similarity)(codes, voices)
    for c, v, g in zip(codes[:2], voices[:2], got):
        with torch.no_grad():
            audio, n = codec.decode(torch.from_numpy(c.T[None].copy()), torch.tensor([len(c)]))
        heard = similarity.embed([audio[0, :int(n[0])].float().numpy()], codec.sample_rate)
        assert g == pytest.approx(float(cosine(heard, v[None])[0]), abs=1e-4)
    assert got[2] != got[2]  # empty: no voice to compare
    assert codec_voice_match(codec, similarity)(codes[:2], [None, None]) == pytest.approx([np.nan] * 2, nan_ok=True)
