"""Converting a plain LFM2 base written in the published config style (LiquidAI/LFM2-350M:
``block_*`` keys, ``full_attn_idxs``, no ``layer_types``) with its tokenizer files."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Lfm2Config, Lfm2ForCausalLM

from kani_adapt import tokens
from kani_adapt.core.errors import CheckpointError
from kani_adapt.models.generator import checkpoint
from kani_adapt.models.generator.tokenizer import build_offline_text_tokenizer
from tests.helpers import copy_dir

CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                 "{{ m['content'] }}<|im_end|>\n{% endfor %}")


def published_style_config(tie: bool = True) -> dict:
    """A tiny config.json in the layout LiquidAI publishes (values shrunk)."""
    return {
        "architectures": ["Lfm2ForCausalLM"], "model_type": "lfm2",
        "block_auto_adjust_ff_dim": True, "block_dim": 64, "block_ff_dim": 256,
        "block_ffn_dim_multiplier": 1.0, "block_mlp_init_scale": 1.0, "block_multiple_of": 32,
        "block_norm_eps": 1e-05, "block_out_init_scale": 1.0, "block_use_swiglu": True,
        "block_use_xavier_init": True, "bos_token_id": 1, "conv_L_cache": 3, "conv_bias": False,
        "conv_dim": 64, "conv_dim_out": 64, "conv_use_xavier_init": True, "eos_token_id": 7,
        "full_attn_idxs": [1, 3], "hidden_size": 64, "initializer_range": 0.02,
        "max_position_embeddings": 128000, "norm_eps": 1e-05, "num_attention_heads": 4,
        "num_heads": 4, "num_hidden_layers": 4, "num_key_value_heads": 2, "pad_token_id": 0,
        "rope_theta": 1000000.0, "torch_dtype": "float32", "use_cache": True,
        "use_pos_enc": True, "vocab_size": 65536, "tie_word_embeddings": tie,
    }


def write_base(folder, tie=True, seed=0):
    raw = published_style_config(tie)
    torch.manual_seed(seed)
    model = Lfm2ForCausalLM(Lfm2Config(**raw)).eval()
    model.save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps(raw, indent=2))  # as published, not re-dumped
    tok = build_offline_text_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lfm2") / "LFM2-350M"
    return folder, write_base(folder)


def test_published_style_base_converts_with_its_text_behaviour(base):
    folder, plain = base
    assert plain.config.layer_types[1] == "full_attention" and plain.config.intermediate_size
    model, tok = checkpoint.init_from_base(str(folder))
    text = torch.tensor([[tokens.BOS, *range(40, 60)]])
    with torch.no_grad():
        ref = plain(input_ids=text).logits[..., :tokens.TEXT_VOCAB_SIZE]
        got = model.eval()(input_ids=text).logits[..., :tokens.TEXT_VOCAB_SIZE]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_converted_and_re_saved_checkpoints_keep_every_tokenizer_file(base, tmp_path):
    folder, _ = base
    shipped = {p.name for p in folder.iterdir()} - {"config.json", "model.safetensors",
                                                   "generation_config.json"}
    assert {"chat_template.jinja", "tokenizer_config.json", "special_tokens_map.json",
            "tokenizer.json"} <= shipped
    model, tok = checkpoint.init_from_base(str(folder))
    converted = checkpoint.save_checkpoint(model, tok, tmp_path / "kani", dtype="fp32")
    # export writes through the same function, from a reloaded checkpoint
    again, tok2 = checkpoint.load_checkpoint(str(converted))
    exported = checkpoint.save_checkpoint(again, tok2, tmp_path / "export", dtype="bf16")
    for out in (converted, exported):
        assert shipped <= {p.name for p in out.iterdir()}, out
        assert (out / "chat_template.jinja").read_text() == CHAT_TEMPLATE
        assert not (out / "added_tokens.json").exists()
    assert tok2.chat_template == CHAT_TEMPLATE


def test_unknown_tokenizer_class_is_one_line_naming_the_file_and_version(base, tmp_path):
    import transformers

    folder = copy_dir(base[0], tmp_path / "newer")
    cfg_file = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["tokenizer_class"] = "Lfm3TokenizerFast"
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as err:
        checkpoint.init_from_base(str(folder))
    message = str(err.value)
    assert "\n" not in message and str(cfg_file) in message
    assert transformers.__version__ in message and "Lfm3TokenizerFast" in message


def test_base_with_its_own_lm_head_is_refused_not_re_tied(tmp_path):
    folder = tmp_path / "untied"
    plain = write_base(folder, tie=False, seed=1)
    assert "lm_head.weight" in load_file(str(folder / "model.safetensors"))
    assert not torch.equal(plain.lm_head.weight, plain.model.embed_tokens.weight)
    with pytest.raises(CheckpointError, match="lm_head is not tied"):
        checkpoint.init_from_base(str(folder))


def test_untied_flag_with_identical_weights_still_converts(base, tmp_path):
    """What matters is the tensor: a head equal to the embeddings loses nothing when tied."""
    folder = copy_dir(base[0], tmp_path / "flag-only")
    raw = json.loads((folder / "config.json").read_text())
    raw["tie_word_embeddings"] = False
    (folder / "config.json").write_text(json.dumps(raw))
    state = load_file(str(folder / "model.safetensors"))
    state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    model, _ = checkpoint.init_from_base(str(folder))
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
