"""Short-prompt tools: onset-only guidance, the text dropout that trains its unconditional branch,
the onset-entropy derailment score and generate --retries."""
import pytest
import torch

from kani_adapt import tokens
from kani_adapt.models.generator.generate import generate
from kani_adapt.models.generator.tokenizer import encode_text
from kani_adapt.config.sampling import SamplingConfig
from tests.helpers import tiny_generator


@pytest.fixture(scope="module")
def tiny():
    return tiny_generator()


def _run(model, tok, **guidance):
    prompts = [tokens.prompt_ids(encode_text(tok, text, "de")) for text in ("ja", "guten tag zusammen")]
    spk = torch.nn.functional.normalize(torch.randn(2, 128, generator=torch.Generator().manual_seed(0)), dim=-1)
    sampling = SamplingConfig(temperature=0.0, repetition_penalty=1.0, max_frames=5, **guidance)
    return generate(model, prompts, spk, sampling, keep_logits=True)


def test_scale_one_equals_plain_generation_and_a_larger_scale_differs(tiny):
    model, tok = tiny
    plain = _run(model, tok)
    same = _run(model, tok, cfg_scale=1.0, cfg_frames=3)
    guided = _run(model, tok, cfg_scale=3.0, cfg_frames=3)
    for a, b in zip(plain, same):
        assert (a.codes == b.codes).all() and a.token_ids == b.token_ids
        assert all(torch.equal(x, y) for x, y in zip(a.step_logits, b.step_logits))
    assert not torch.allclose(plain[0].step_logits[0], guided[0].step_logits[0])
    assert any((a.codes.shape != b.codes.shape) or (a.codes != b.codes).any()
               for a, b in zip(plain, guided))


def test_text_dropout_trains_a_fixed_share_of_rows_without_text(tmp_path, tiny):
    from kani_adapt.training.data import TokenizedSet, drop_texts

    _, tok = tiny
    ids = [encode_text(tok, f"satz nummer {i}", "de") for i in range(10)]
    part = TokenizedSet(None, list(range(10)), [list(x) for x in ids], [len(x) + 50 for x in ids],
                        None, ["de"] * 10, ["x"] * 10)
    assert drop_texts(part, 0.3, seed=5) == 3
    dropped = [i for i, x in enumerate(part.text_ids) if x == [tokens.BOS]]
    assert len(dropped) == 3
    assert all(part.lengths[i] == 51 for i in dropped)
    again = TokenizedSet(None, list(range(10)), [list(x) for x in ids], [len(x) + 50 for x in ids],
                         None, ["de"] * 10, ["x"] * 10)
    drop_texts(again, 0.3, seed=5)
    assert again.text_ids == part.text_ids  # the same rows on every run: resume stays exact


@pytest.mark.slow
def test_onset_entropy_separates_a_memorised_row_from_a_derailed_one():
    """A tiny generator trained on one row until it knows it speaks that row with a low onset
    entropy; the same network untrained runs on to the length cap (derailed) with a flat, high
    one."""
    import copy

    import numpy as np

    from kani_adapt.models.generator.batch import collate
    from kani_adapt.training.synthetic import text_codes

    torch.manual_seed(0)
    untrained, tok = tiny_generator()
    model = copy.deepcopy(untrained).train()
    text_ids = encode_text(tok, "guten tag", "de")
    codes = text_codes("guten tag", np.random.default_rng(0))
    batch = collate([tokens.build_example(text_ids, codes)])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    sampling = SamplingConfig(temperature=0.0, repetition_penalty=1.0, max_frames=len(codes) + 4)
    prompt = [tokens.prompt_ids(text_ids)]
    memorised = generate(model, prompt, None, sampling)[0]
    looping = generate(untrained, prompt, None, sampling)[0]
    assert (memorised.codes[:len(codes)] == codes[:len(memorised.codes)]).mean() > 0.9
    print("onset entropy: memorised", memorised.onset_entropy, "untrained", looping.onset_entropy)
    assert looping.hit_length_cap  # never finds its end: runs on to the cap
    assert memorised.onset_entropy < 0.5 * looping.onset_entropy


def test_retries_sample_a_failed_utterance_again_with_the_next_seed(capsys):
    from types import SimpleNamespace

    from kani_adapt.cli.generate_command import _retry, failed

    ok = SimpleNamespace(hit_length_cap=False, onset_entropy=0.2)
    derailed = SimpleNamespace(hit_length_cap=False, onset_entropy=0.95)
    capped = SimpleNamespace(hit_length_cap=True, onset_entropy=0.1)
    assert not failed(ok, 0.9) and failed(derailed, 0.9) and failed(capped, 0.9)
    seeds = []

    def again(picked, sampling):  # the indices of the utterances to sample again
        seeds.append((picked, sampling.seed))
        return [ok if sampling.seed == 9 else derailed for _ in picked]
    args = SimpleNamespace(retries=3, derail_threshold=0.9, text=["a", "b", "c"])
    rows = _retry([ok, derailed, capped], args, SamplingConfig(seed=7), again)
    assert rows == [ok, ok, ok] and seeds == [([1, 2], 8), ([1, 2], 9)]
    said = capsys.readouterr().out.splitlines()
    assert said[:3] == ["retry 1/3: 2 utterance(s) failed, sampling again with seed 8",
                        "  text 2: derailed onset: entropy 0.95 over its first frames is above "
                        "--derail-threshold 0.9",
                        "  text 3: no end of speech before --max-frames (it ran on to the length cap)"]
