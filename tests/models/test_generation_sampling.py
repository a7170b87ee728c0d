"""Sampling on the device: nucleus, temperature, codebook constraint, repetition penalty."""
import torch

from kani_adapt import tokens
from kani_adapt.models.generator.generate import _choose, generate
from kani_adapt.config.sampling import SamplingConfig
from kani_adapt.models.generator.tokenizer import encode_text
from tests.helpers import tiny_generator


def test_top_p_samples_only_inside_the_nucleus():
    scores = torch.log(torch.tensor([[0.05, 0.6, 0.3, 0.05], [0.25, 0.25, 0.25, 0.25]]))
    gen = torch.Generator().manual_seed(0)
    nucleus = SamplingConfig(temperature=1.0, top_p=0.8)
    draws = torch.stack([_choose(scores, nucleus, gen) for _ in range(400)])
    assert set(draws[:, 0].tolist()) == {1, 2}  # 0.6 + 0.3 reach 0.8; the tails never come
    assert set(draws[:, 1].tolist()) == {0, 1, 2, 3}  # rows are sampled independently
    share = (draws[:, 0] == 1).float().mean()
    assert 0.55 < share < 0.78  # 0.6 / 0.9 renormalised
    greedy = _choose(scores, SamplingConfig(temperature=0), gen)
    assert greedy.tolist() == [1, 0]


def test_sampled_batches_follow_the_codebook_order_and_are_reproducible():
    model, tok = tiny_generator()
    prompts = [tokens.prompt_ids(encode_text(tok, text)) for text in ("one", "two words", "x")]
    sampling = SamplingConfig(temperature=1.5, top_p=0.9, repetition_penalty=1.3,
                              max_frames=4, seed=3)
    rows = generate(model, prompts, None, sampling)
    again = generate(model, prompts, None, sampling)
    assert [r.token_ids for r in rows] == [r.token_ids for r in again]
    for row in rows:
        start = row.token_ids.index(tokens.START_OF_SPEECH)
        tokens.parse_codes(row.token_ids[start:], strict=True)  # raises on a wrong codebook
        assert len(row.codes) >= 1 or not row.hit_length_cap
    other = generate(model, prompts, None, SamplingConfig(**{**sampling.__dict__, "seed": 4}))
    assert [r.token_ids for r in rows] != [r.token_ids for r in other]


def test_each_row_stops_at_its_own_frame_cap():
    model, tok = tiny_generator()
    prompts = [tokens.prompt_ids(encode_text(tok, t, "de")) for t in ("ja", "guten tag", "nein")]
    with torch.no_grad():  # never end on its own: every row runs to its cap
        model.lm_head.weight[tokens.END_OF_SPEECH] = 0.0
    sampling = SamplingConfig(max_frames=5, seed=1)
    rows = generate(model, prompts, None, sampling, caps=[2, 7, 4])
    assert [len(r.codes) for r in rows] == [2, 5, 4] and all(r.hit_length_cap for r in rows)
