"""LoRA on the generator: target presets, extra trainable tensors, save, load and merge.

In LFM2, ``out_proj`` names both the attention output and the short-conv output, and PEFT
matches target names by suffix, so presets always name the parent (``self_attn.out_proj``,
``conv.out_proj``). The depthwise ``conv.conv`` cannot take LoRA.
"""
from __future__ import annotations

import dataclasses

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from kani_adapt.core.errors import CheckpointError, ConfigError
from kani_adapt.tokens import END_OF_SPEECH
from kani_adapt.models.generator.bundle import Generator
from kani_adapt.training.config import LoraConfig

ATTENTION = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj"]
MLP = ["feed_forward.w1", "feed_forward.w2", "feed_forward.w3"]
CONV = ["conv.in_proj", "conv.out_proj"]
PRESETS = {"attention": ATTENTION, "attention_mlp": ATTENTION + MLP,
           "all_linear": ATTENTION + MLP + CONV,
           # what vLLM, SGLang and llama.cpp take unmerged (kani_adapt/training/servability.py)
           "servable": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
           # upstream's DPO targets (gepard-train conf/dpo/training): a narrow update
           "qv": ["self_attn.q_proj", "self_attn.v_proj"]}
EXTRAS_FILE = "kani_extras.safetensors"


def extra_names(model, cfg: LoraConfig) -> list[str]:
    """Official-format names of the full tensors trained beside the adapter."""
    names = []
    for name, _ in model.named_parameters():
        if cfg.train_speaker_projection and name.endswith("speaker_emb_projection.weight"):
            names.append(name)
        if cfg.train_rope_scales and name.endswith("alpha_weight"):
            names.append(name)
    return names


def extra_names_of(cfg: LoraConfig) -> list[str]:
    """What :func:`extra_names` trains, in words (for the card)."""
    return (["the speaker projection"] if cfg.train_speaker_projection else []) + \
        (["the RoPE scales"] if cfg.train_rope_scales else [])


def rows_of(cfg: LoraConfig) -> list[str]:
    """Single rows of the tied embedding/LM head the adapter trains (PEFT's trainable tokens,
    in the adapter file), in words."""
    return ["the end-of-speech output row"] if cfg.stop_row else []


def apply_lora(model, cfg: LoraConfig):
    """Wrap ``model`` in a PEFT LoRA model; returns the PeftModel (base layers frozen)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    if cfg.r < 1:
        raise ConfigError("lora.r must be at least 1")
    extras = extra_names(model, cfg)
    rows = {"trainable_token_indices": {"embed_tokens": [END_OF_SPEECH]}} if cfg.stop_row else {}
    peft_model = get_peft_model(model, PeftLoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, use_rslora=cfg.rslora,
        target_modules=PRESETS[cfg.targets], bias="none", **rows,
    ))
    injected = [n for n, _ in peft_model.named_modules() if n.endswith("lora_A")]
    if not injected:
        raise ConfigError(f"lora.targets={cfg.targets} matched no layer of this model")
    for name, param in peft_model.get_base_model().named_parameters():
        if name in extras:
            param.requires_grad_(True)
    return peft_model


def save_adapter(peft_model, cfg: LoraConfig, out: Path) -> None:
    """PEFT adapter folder, plus the trained full tensors (speaker projection, RoPE scales)."""
    # save_embedding_layers=False: "auto" looks the base up on the hub (network, retries).
    peft_model.save_pretrained(str(out), save_embedding_layers=False)
    base = peft_model.get_base_model()
    names = extra_names(base, cfg)
    if names:
        state = dict(base.named_parameters())
        save_file({n: state[n].detach().contiguous().cpu() for n in names}, out / EXTRAS_FILE)


def load_adapter(base: Generator, adapter_dir: str | Path) -> Generator:
    """Apply a saved adapter (and its extras) to a loaded generator: the bundle around the
    PeftModel, with the adapter's text frontend and prompt layout where it stored them."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise CheckpointError(f"{adapter_dir}: no adapter_config.json; is it an adapter folder?")
    extras_path = adapter_dir / EXTRAS_FILE
    if extras_path.is_file():
        extras = load_file(extras_path)
        params = dict(base.model.named_parameters())
        unknown = sorted(set(extras) - set(params))
        if unknown:
            raise CheckpointError(f"{extras_path}: unknown tensors {unknown[:4]}")
        with torch.no_grad():
            for name, value in extras.items():
                params[name].copy_(value)
    from kani_adapt.models.generator.checkpoint import TEXT_LAYOUT, read_layout
    from kani_adapt.text import frontend

    # the adapter's texts were read this way, and its prompts laid out so: generation does the same
    adapted = base.with_frontend(frontend.read(adapter_dir))
    if (adapter_dir / TEXT_LAYOUT).is_file():
        adapted = dataclasses.replace(adapted, text_layout=read_layout(adapter_dir))
    return adapted.with_model(PeftModel.from_pretrained(base.model, str(adapter_dir)))


def merge(peft_model):
    """The base model with the adapter folded into its weights (a plain KaniTTS2 model)."""
    return peft_model.merge_and_unload()
