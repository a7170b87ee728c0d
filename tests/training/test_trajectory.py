"""The trajectory log-likelihood is the sampler's own probability of what it sampled, end of
speech included, for conditioned and unconditioned rows, whole and truncated rollouts."""
import math

import numpy as np
import pytest
import torch

from kani_adapt import tokens
from kani_adapt.config.sampling import SamplingConfig
from kani_adapt.models.generator.generate import generate
from kani_adapt.models.generator.tokenizer import encode_text
from kani_adapt.training import trajectory
from tests.helpers import tiny_generator


def sampler_logprob(row) -> tuple[float, float]:
    """(the whole log-probability, its end-of-speech part) of a generated row under the
    constrained policy at temperature 1, from the raw logits generation kept."""
    generated = row.token_ids[row.token_ids.index(tokens.START_OF_SPEECH) + 1:]
    total = stop = 0.0
    for k, (token, logits) in enumerate(zip(generated, row.step_logits)):
        c = k % 4
        start = tokens.AUDIO_TOKENS_START + c * tokens.CODEBOOK_SIZE
        ids = list(range(start, start + tokens.CODEBOOK_SIZE))
        if c == 0:
            ids = [tokens.END_OF_SPEECH, *ids]
        logp = torch.log_softmax(logits[ids].double(), -1)
        picked = float(logp[ids.index(token)])
        total += picked
        if c == 0:
            p_end = float(logp[0].exp())
            stop += math.log(p_end) if token == tokens.END_OF_SPEECH else math.log1p(-p_end)
    return total, stop


@pytest.fixture(scope="module")
def rolled():
    model, tok = tiny_generator(seed=3)
    prompts = [tokens.prompt_ids(encode_text(tok, text, "de")) for text in
               ("ja", "guten morgen", "wie geht es dir heute", "nein")]
    speakers = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 128)).astype(np.float32))
    # Point the end-of-speech row along the hidden states of a first rollout, so that some rows
    # end on their own and others hit the cap.
    sampling = SamplingConfig(temperature=1.0, top_p=1.0, repetition_penalty=1.0, max_frames=6,
                              seed=5)
    ids = torch.tensor([generate(model, prompts[:1], None, sampling)[0].token_ids])
    with torch.no_grad():
        direction = model.hidden_states(input_ids=ids, attention_mask=torch.ones_like(ids))[0].mean(0)
        model.lm_head.weight[tokens.END_OF_SPEECH] = 2 * direction / direction.norm()
    out = {}
    for conditioned in (True, False):
        rows = generate(model, prompts, speakers if conditioned else None, sampling,
                        keep_logits=True)
        out[conditioned] = [(trajectory.Rollout(p, r.codes, r.hit_length_cap,
                                                speakers[i].numpy() if conditioned else None), r)
                            for i, (p, r) in enumerate(zip(prompts, rows))]
    return model, out


@pytest.mark.parametrize("conditioned", [True, False])
def test_the_likelihood_is_the_samplers_probability_of_the_rollout(rolled, conditioned):
    model, rows = rolled
    pairs = rows[conditioned]
    assert {r.hit_length_cap for _, r in pairs} == {True, False}  # both kinds are covered
    got = trajectory.logprobs(model, trajectory.batch([p for p, _ in pairs]), floor=0.0)
    for i, (rollout, row) in enumerate(pairs):
        whole, stop = sampler_logprob(row)
        assert float(got.token_lp[i] + got.stop_lp[i]) == pytest.approx(whole, abs=2e-3)
        assert float(got.stop_lp[i]) == pytest.approx(stop, abs=2e-3)
        assert int(got.frames[i]) == len(rollout.codes)


def test_an_empty_rollout_is_the_probability_of_ending_at_once_and_truncation_drops_the_last_stop(rolled):
    model, rows = rolled
    prompt = rows[False][0][0].prompt
    empty = trajectory.Rollout(prompt, np.zeros((0, 4), dtype=np.int64), False)
    cut = trajectory.Rollout(prompt, np.zeros((0, 4), dtype=np.int64), True)
    got = trajectory.logprobs(model, trajectory.batch([empty, cut]), floor=0.0)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([list(prompt)]), use_cache=False).logits[0, -1]
    ids = [tokens.END_OF_SPEECH, *range(tokens.AUDIO_TOKENS_START,
                                        tokens.AUDIO_TOKENS_START + tokens.CODEBOOK_SIZE)]
    assert float(got.stop_lp[0]) == pytest.approx(float(torch.log_softmax(logits[ids], -1)[0]), abs=1e-4)
    assert float(got.stop_lp[1]) == 0.0 and float(got.combined()[0]) == float(got.stop_lp[0])


def test_the_floor_keeps_stop_terms_within_its_bounds_and_zero_is_exact(rolled):
    model, rows = rolled
    batch = trajectory.batch([p for p, _ in rows[True]])
    exact = trajectory.logprobs(model, batch, floor=0.0)
    floored = trajectory.logprobs(model, batch, floor=0.01)
    assert torch.equal(exact.token_lp, floored.token_lp)
    per_decision = floored.stop_lp / (floored.frames + 1)
    assert bool((per_decision >= math.log(0.01) - 1e-6).all())
    assert not torch.allclose(exact.stop_lp, floored.stop_lp)


def test_gradients_reach_the_end_of_speech_row_only_through_the_stop_terms(rolled):
    model, rows = rolled
    batch = trajectory.batch([p for p, _ in rows[False]])
    weight = model.lm_head.weight
    for stop, reached in ((True, True), (False, False)):
        weight.grad = None
        trajectory.logprobs(model, batch, floor=0.0, stop=stop).combined().sum().backward()
        assert bool(weight.grad[tokens.END_OF_SPEECH].abs().sum() > 0) is reached
