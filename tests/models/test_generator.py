import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import Lfm2ForCausalLM

from kani_adapt import tokens
from kani_adapt.core.errors import CheckpointError
from kani_adapt.models.generator import checkpoint
from kani_adapt.models.generator.batch import collate
from kani_adapt.models.generator.generate import generate
from kani_adapt.config.sampling import SamplingConfig
from kani_adapt.models.generator.tokenizer import encode_text
from tests.helpers import copy_dir, example_batch, tiny_generator

GREEDY = SamplingConfig(temperature=0, repetition_penalty=1.0, max_frames=5)
OFFICIAL_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "generation_config.json"}


@pytest.fixture(scope="module")
def tiny():
    return tiny_generator()


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    model, tok = tiny
    return checkpoint.save_checkpoint(model, tok, tmp_path_factory.mktemp("ck") / "gen",
                                      dtype="fp32")


def prompts_for(tok):
    return [tokens.prompt_ids(encode_text(tok, "a longer sentence here", "de")),
            tokens.prompt_ids(encode_text(tok, "short"))]


@pytest.mark.parametrize("audio_step", [1.0, 0.5])
@pytest.mark.parametrize("with_speaker", [False, True])
def test_cached_generation_uses_training_positions_and_logits(tiny, audio_step, with_speaker):
    model, tok = tiny
    model.config.audio_step = audio_step
    try:
        spk = torch.randn(2, 128) if with_speaker else None
        rows = generate(model, prompts_for(tok), spk, GREEDY, keep_logits=True)
        for i, row in enumerate(rows):
            assert len(row.codes) > 0  # audio was generated, so audio positions were exercised
            expected = tokens.frame_positions(row.token_ids, audio_step, speaker_slot=with_speaker)
            np.testing.assert_array_equal(row.positions, expected)
            # Teacher-forced forward over the whole row (training path, no cache, no padding)
            full = model(input_ids=torch.tensor([row.token_ids]),
                         speaker_emb=None if spk is None else spk[i:i + 1]).logits[0]
            start = len(prompts_for(tok)[i]) + int(with_speaker) - 1
            ref = full[start:start + len(row.step_logits)]
            torch.testing.assert_close(torch.stack(row.step_logits), ref, atol=1e-4, rtol=1e-4)
    finally:
        model.config.audio_step = 1.0


def test_batched_generation_equals_one_row_at_a_time(tiny):
    model, tok = tiny
    spk = torch.randn(2, 128)
    batched = generate(model, prompts_for(tok), spk, GREEDY)
    for i, prompt in enumerate(prompts_for(tok)):
        alone = generate(model, [prompt], spk[i:i + 1], GREEDY)[0]
        assert alone.token_ids == batched[i].token_ids


def test_generation_stops_at_end_of_speech_or_flags_the_cap(tiny):
    model, tok = tiny
    rows = generate(model, prompts_for(tok), None,
                    SamplingConfig(temperature=1.0, max_frames=3, seed=1))
    for row in rows:
        assert len(row.codes) <= 3
        generated = row.token_ids[len(row.token_ids) - 4 * len(row.codes) - 1:]
        assert row.hit_length_cap == (tokens.END_OF_SPEECH not in generated)
        assert row.codes.min() >= 0 and row.codes.max() < tokens.CODEBOOK_SIZE


def test_right_padding_does_not_change_logits(tiny):
    model, tok = tiny
    examples = example_batch(tok)
    spk = torch.randn(2, 128)
    batch = collate(examples, spk)
    padded = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    for i, ex in enumerate(examples):
        alone = model(input_ids=torch.tensor([ex.input_ids]), speaker_emb=spk[i:i + 1]).logits[0]
        torch.testing.assert_close(padded[i, :len(alone)], alone, atol=1e-5, rtol=1e-5)


def test_left_padding_does_not_leak_through_short_convs(tiny):
    # LFM2's short convolutions ignore the attention mask; pad embeddings (non-zero here)
    # must not reach the first real tokens.
    model, tok = tiny
    ids = example_batch(tok)[1].input_ids
    pad = 5
    padded = torch.tensor([[tokens.PAD] * pad + ids])
    mask = torch.tensor([[0] * pad + [1] * len(ids)])
    pos = torch.tensor(np.concatenate([np.zeros(pad), tokens.frame_positions(ids)]))[None]
    left = model(input_ids=padded, attention_mask=mask, position_ids=pos.float()).logits[0, pad:]
    alone = model(input_ids=torch.tensor([ids])).logits[0]
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=1e-5)


def test_speaker_slot_gets_no_loss_and_labels_stay_aligned(tiny):
    model, tok = tiny
    ex = example_batch(tok)[0]
    ids = torch.tensor([ex.input_ids])
    spk = torch.randn(1, 128)
    out = model(input_ids=ids, speaker_emb=spk, labels=ids)
    logits = out.logits[0]  # (L + 1, V): the slot is element 1
    # SOH's prediction (of the slot) is ignored; the slot predicts BOS, and so on.
    manual = torch.nn.functional.cross_entropy(logits[1:-1], ids[0, 1:])
    torch.testing.assert_close(out.loss, manual)


def test_speaker_embedding_changes_the_output(tiny):
    model, tok = tiny
    ids = torch.tensor([example_batch(tok)[0].input_ids])
    a = model(input_ids=ids, speaker_emb=torch.randn(1, 128)).logits
    b = model(input_ids=ids, speaker_emb=torch.randn(1, 128)).logits
    assert (a[0, 2:] - b[0, 2:]).abs().max() > 1e-3


def test_rope_scales_are_used_per_layer(tiny):
    model, tok = tiny
    ids = torch.tensor([example_batch(tok)[0].input_ids])
    before = model(input_ids=ids).logits
    rope = model.model.learnable_rope_layers[3]
    with torch.no_grad():
        rope.alpha_weight += 1.0
    try:
        after = model(input_ids=ids).logits
    finally:
        with torch.no_grad():
            rope.alpha_weight -= 1.0
    assert (after - before).abs().max() > 1e-4


def test_rope_scales_get_gradients(tiny):
    model, tok = tiny
    batch = collate(example_batch(tok), torch.randn(2, 128))
    model.zero_grad()
    model(**batch).loss.backward()
    grads = [r.alpha_weight.grad for r in model.model.learnable_rope_layers if r is not None]
    assert all(g is not None and g.abs() > 0 for g in grads)
    assert model.model.speaker_emb_projection.weight.grad.abs().sum() > 0
    model.zero_grad()


def test_official_alpha_init_starts_near_1_05():
    base, tok = checkpoint.build_base("tiny")
    model = checkpoint.convert_base(base, tok, alpha_init="official")
    assert all(abs(a - 1.05) < 1e-6 for a in model.alphas().values())


def test_save_then_load_gives_identical_logits(tiny, saved):
    model, tok = tiny
    loaded, loaded_tok = checkpoint.load_checkpoint(str(saved))
    batch = collate(example_batch(tok), torch.randn(2, 128))
    batch.pop("labels")
    assert torch.equal(model(**batch).logits, loaded(**batch).logits)
    assert len(loaded_tok) == tokens.VOCAB_SIZE
    assert loaded.alphas() == model.alphas()


def test_export_matches_the_official_layout(tiny, tmp_path):
    model, tok = tiny
    out = checkpoint.save_checkpoint(model, tok, tmp_path / "export", dtype="bf16",
                                     language_tags=["DE", "en_glasgow"])
    assert {p.name for p in out.iterdir()} == OFFICIAL_FILES
    config = json.loads((out / "config.json").read_text())
    expected = {
        "model_type": "lfm2", "architectures": ["KaniTTS2ForCausalLM"],
        "use_learnable_rope": True, "alpha_min": 0.1, "alpha_max": 2.0, "audio_step": 1.0,
        "tokens_per_frame": 4, "speaker_emb_dim": 128, "audio_tokens_start": 64410,
        "text_vocab_size": 64400, "vocab_size": 80538, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "language_settings": {"status": "available_language_tags",
                              "language_tags_list": ["de", "en_glasgow"]},
    }
    assert {k: config.get(k) for k in expected} == expected
    gen = json.loads((out / "generation_config.json").read_text())
    assert (gen["eos_token_id"], gen["pad_token_id"]) == (64402, 64407)
    tokenizer_json = json.loads((out / "tokenizer.json").read_text())
    ids = {t["id"] for t in tokenizer_json["added_tokens"]} | set(
        tokenizer_json["model"]["vocab"].values())
    assert ids == set(range(tokens.VOCAB_SIZE))
    with safe_open(out / "model.safetensors", framework="pt") as f:
        keys = set(f.keys())
        assert "lm_head.weight" not in keys
        assert f.get_tensor("model.speaker_emb_projection.weight").shape == (64, 128)
        alpha_keys = {k for k in keys if "learnable_rope" in k}
        attention = [i for i, t in enumerate(model.config.layer_types) if t == "full_attention"]
        assert alpha_keys == {f"model.learnable_rope_layers.{i}.alpha_weight" for i in attention}
        assert all(f.get_tensor(k).shape == () for k in alpha_keys)
        assert {f.get_tensor(k).dtype for k in keys} == {torch.bfloat16}
        stock = set(Lfm2ForCausalLM(model.config).state_dict()) - {"lm_head.weight"}
        assert keys - alpha_keys - {"model.speaker_emb_projection.weight"} == stock


def test_export_without_tags_says_so(tiny, saved):
    config = json.loads((saved / "config.json").read_text())
    assert config["language_settings"] == {"status": "no_language_tags", "language_tags_list": []}


@pytest.mark.parametrize("drop", ["model.speaker_emb_projection.weight",
                                  "model.learnable_rope_layers.1.alpha_weight",
                                  "model.layers.0.conv.in_proj.weight"])
def test_checkpoint_with_a_missing_key_is_refused(saved, tmp_path, drop):
    broken = copy_dir(saved, tmp_path / "broken")
    state = load_file(saved / "model.safetensors")
    del state[drop]
    save_file(state, broken / "model.safetensors")
    with pytest.raises(CheckpointError, match=drop.replace(".", r"\.")):
        checkpoint.load_checkpoint(str(broken))


def test_checkpoint_with_an_unexpected_key_is_refused(saved, tmp_path):
    broken = copy_dir(saved, tmp_path / "extra")
    state = load_file(saved / "model.safetensors")
    state["model.learnable_rope_layers.0.alpha_weight"] = torch.tensor(0.0)
    save_file(state, broken / "model.safetensors")
    with pytest.raises(CheckpointError, match="unexpected"):
        checkpoint.load_checkpoint(str(broken))


def test_stock_lfm2_config_is_not_loaded_as_kanitts2(saved, tmp_path):
    broken = copy_dir(saved, tmp_path / "stock")
    config = json.loads((saved / "config.json").read_text())
    config.pop("use_learnable_rope")
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="use_learnable_rope"):
        checkpoint.load_checkpoint(str(broken))


def test_sdpa_and_eager_agree(saved, tiny):
    _, tok = tiny
    sdpa, _ = checkpoint.load_checkpoint(str(saved), attn_implementation="sdpa")
    eager, _ = checkpoint.load_checkpoint(str(saved), attn_implementation="eager")
    assert sdpa.config._attn_implementation == "sdpa"
    assert eager.config._attn_implementation == "eager"
    batch = collate(example_batch(tok), torch.randn(2, 128))
    batch.pop("labels")
    mask = batch["attention_mask"]
    a, b = sdpa(**batch).logits, eager(**batch).logits
    real = torch.cat([mask[:, :1], torch.ones_like(mask[:, :1]), mask[:, 1:]], 1).bool()
    torch.testing.assert_close(a[real], b[real], atol=1e-4, rtol=1e-4)
    spk = torch.randn(2, 128)
    ga = generate(sdpa, prompts_for(tok), spk, GREEDY)
    gb = generate(eager, prompts_for(tok), spk, GREEDY)
    assert [r.token_ids for r in ga] == [r.token_ids for r in gb]


@pytest.fixture(scope="module")
def saved_base(tmp_path_factory):
    """A tiny plain LFM2 base saved the way LiquidAI ships it (vocab 65536, 64400 tokens)."""
    base, tok = checkpoint.build_base("tiny", seed=3)
    path = tmp_path_factory.mktemp("base") / "lfm2-tiny"
    base.save_pretrained(path)
    tok.save_pretrained(path)
    return path, base.eval(), tok


def test_init_from_base_keeps_text_behaviour(saved_base):
    path, base, base_tok = saved_base
    model, tok = checkpoint.init_from_base(str(path))
    model.eval()
    assert model.config.vocab_size == tokens.VOCAB_SIZE
    assert model.model.embed_tokens.weight.shape[0] == tokens.VOCAB_SIZE
    assert len(tok) == tokens.VOCAB_SIZE
    assert tok.convert_tokens_to_ids("<custom_token_0>") == 64400
    text = torch.tensor([[tokens.BOS, *range(40, 60)]])
    ref = base(input_ids=text).logits[..., :tokens.TEXT_VOCAB_SIZE]
    got = model(input_ids=text).logits[..., :tokens.TEXT_VOCAB_SIZE]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    # Rows the base had are kept; the rest are new.
    old = base.model.embed_tokens.weight
    assert torch.equal(model.model.embed_tokens.weight[:len(old)], old)


def test_init_from_base_refuses_a_tokenizer_of_the_wrong_size(saved_base, tmp_path):
    path, _, tok = saved_base
    other = copy_dir(path, tmp_path / "bad-base")
    tok2 = type(tok).from_pretrained(path)
    tok2.add_tokens(["<extra_a>", "<extra_b>"])
    tok2.save_pretrained(other)
    with pytest.raises(CheckpointError, match="64400"):
        checkpoint.init_from_base(str(other))


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such model directory"):
        checkpoint.load_checkpoint(str(tmp_path / "nope"))
    with pytest.raises(CheckpointError, match="lacks model.safetensors"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.json").write_text("{}")
        checkpoint.load_checkpoint(str(tmp_path / "empty"))


def test_gradient_checkpointing_gives_the_same_gradients(tiny):
    model, tok = tiny
    batch = collate(example_batch(tok), torch.randn(2, 128))
    model.train()
    try:
        grads = []
        for checkpointing in (False, True):
            if checkpointing:
                model.gradient_checkpointing_enable()
            model.zero_grad()
            model(**batch).loss.backward()
            grads.append({n: p.grad.clone() for n, p in model.named_parameters()
                          if p.grad is not None})
    finally:
        model.gradient_checkpointing_disable()
        model.zero_grad()
        model.eval()
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5)


def test_350m_preset_has_the_lfm2_350m_shape():
    from transformers import Lfm2Config

    from kani_adapt.models.generator import sizes
    from kani_adapt.models.generator.model import KaniTTS2ForCausalLM

    config = Lfm2Config(**{**sizes.base_config_kwargs("350m"), **sizes.kani_config_keys()})
    with torch.device("meta"):
        model = KaniTTS2ForCausalLM(config)
    layers = model.model.layers
    assert len(layers) == 16
    assert [i for i, layer in enumerate(layers) if layer.is_attention_layer] == [2, 5, 8, 10, 12, 14]
    assert layers[0].feed_forward.w1.weight.shape == (4608, 1024)
    assert layers[0].conv.in_proj.weight.shape == (3072, 1024)
    assert layers[2].self_attn.k_proj.weight.shape == (8 * 64, 1024)
    params = sum(p.numel() for p in model.parameters())
    assert 360e6 < params < 380e6  # about 370 M at vocab 80538 (format page, section 7)


def test_hub_ids_load_through_the_hugging_face_cache(saved, tmp_path, monkeypatch):
    """A hub id goes through huggingface_hub (here: offline, from a prepared cache)."""
    import huggingface_hub.constants as hub_constants

    revision = "0" * 40
    repo = tmp_path / "hub" / "models--someone--kani-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    copy_dir(saved, repo / "snapshots" / revision)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    model, tok = checkpoint.load_checkpoint("someone/kani-tiny")
    assert len(tok) == tokens.VOCAB_SIZE
    with pytest.raises(CheckpointError, match="could not fetch 'someone/absent'"):
        checkpoint.load_checkpoint("someone/absent")
