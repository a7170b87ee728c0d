"""KaniTTS2 generator: transformers' LFM2 plus frame-level positions, learnable RoPE scales and a
speaker slot (format page, sections 3-5).

The LFM2 code itself is used unchanged. Two forward pre-hooks on each decoder layer add what
KaniTTS2 needs:
- attention layers get cos/sin computed with their own learnable scale ``alpha``;
- every layer sees padded positions zeroed, so left padding (batched generation) cannot leak
  into real tokens through LFM2's short convolutions, which ignore the 4-D attention mask.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import Lfm2Config, Lfm2ForCausalLM

from kani_adapt import tokens
from kani_adapt.core.errors import CheckpointError

PADDING_KWARG = "kani_padding_mask"


class LearnableRope(nn.Module):
    """RoPE with inverse frequencies ``alpha / theta^(2i/d)``; ``alpha`` is a bounded scalar."""

    def __init__(self, head_dim: int, theta: float, alpha_min: float, alpha_max: float):
        super().__init__()
        self.head_dim, self.theta = head_dim, theta
        self.alpha_min, self.alpha_max = alpha_min, alpha_max
        self.alpha_weight = nn.Parameter(torch.tensor(0.0))

    def alpha(self) -> torch.Tensor:
        span = self.alpha_max - self.alpha_min
        return self.alpha_min + span * torch.sigmoid(self.alpha_weight.float())

    def set_alpha(self, alpha: float) -> None:
        """Set ``alpha_weight`` so that ``alpha()`` equals ``alpha`` (1.0 keeps stock RoPE)."""
        share = (alpha - self.alpha_min) / (self.alpha_max - self.alpha_min)
        if not 0 < share < 1:
            raise ValueError(f"alpha {alpha} outside ({self.alpha_min}, {self.alpha_max})")
        with torch.no_grad():
            self.alpha_weight.fill_(math.log(share / (1 - share)))

    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype):
        device = position_ids.device
        with torch.autocast(device_type=device.type, enabled=False):
            exponents = torch.arange(0, self.head_dim, 2, dtype=torch.int64, device=device).float()
            inv_freq = self.alpha().to(device) / (self.theta ** (exponents / self.head_dim))
            freqs = position_ids.float()[..., None] * inv_freq
            emb = torch.cat((freqs, freqs), dim=-1)
            return emb.cos().to(dtype), emb.sin().to(dtype)


def frame_position_ids(input_ids: torch.Tensor, audio_step: float) -> torch.Tensor:
    """Batched ``tokens.frame_positions`` for right-padded (or unpadded) rows, as float32."""
    audio = (input_ids >= tokens.AUDIO_TOKENS_START).long()
    audio_before = audio.cumsum(-1) - audio
    index = torch.arange(input_ids.shape[-1], device=input_ids.device)
    text_before = index - audio_before
    return (text_before + (audio_before // tokens.TOKENS_PER_FRAME) * audio_step).float()


def insert_at_one(x: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
    """Insert ``item`` (B, ...) as sequence element 1 of ``x`` (B, L, ...)."""
    return torch.cat([x[:, :1], item.unsqueeze(1).to(x.dtype), x[:, 1:]], dim=1)


def check_kani_config(config: Lfm2Config) -> None:
    """Refuse configs that the official runtime would load as stock LFM2 or with other ids."""
    problems = []
    if not getattr(config, "use_learnable_rope", False):
        problems.append("use_learnable_rope is not true")
    for key, want in (
        ("audio_tokens_start", tokens.AUDIO_TOKENS_START),
        ("tokens_per_frame", tokens.TOKENS_PER_FRAME),
        ("vocab_size", tokens.VOCAB_SIZE),
    ):
        if getattr(config, key, None) != want:
            problems.append(f"{key} is {getattr(config, key, None)!r}, expected {want}")
    for key in ("alpha_min", "alpha_max", "audio_step", "speaker_emb_dim"):
        if getattr(config, key, None) is None:
            problems.append(f"{key} is missing")
    if problems:
        raise CheckpointError(
            "not a KaniTTS2 generator config: " + "; ".join(problems)
            + " (a plain LFM2 model is converted with `kani-adapt init --base`)"
        )


class KaniTTS2ForCausalLM(Lfm2ForCausalLM):
    """LFM2 causal LM with KaniTTS2's speaker slot and learnable per-layer RoPE scales."""

    def __init__(self, config: Lfm2Config):
        check_kani_config(config)
        super().__init__(config)
        head_dim = config.hidden_size // config.num_attention_heads
        self.model.speaker_emb_projection = nn.Linear(
            config.speaker_emb_dim, config.hidden_size, bias=False
        )
        nn.init.normal_(self.model.speaker_emb_projection.weight, std=config.initializer_range)
        # Indexed by decoder layer (None for conv layers), as in the official checkpoints:
        # keys read model.learnable_rope_layers.{layer}.alpha_weight.
        self.model.learnable_rope_layers = nn.ModuleList(
            [
                LearnableRope(head_dim, config.rope_theta, config.alpha_min, config.alpha_max)
                if kind == "full_attention" else None
                for kind in config.layer_types
            ]
        )
        for layer, rope in zip(self.model.layers, self.model.learnable_rope_layers):
            layer.register_forward_pre_hook(_layer_pre_hook(rope), with_kwargs=True)

    @property
    def audio_step(self) -> float:
        return float(self.config.audio_step)

    def alphas(self) -> dict[int, float]:
        """Current RoPE scale of each attention layer, keyed by layer index."""
        return {
            i: float(rope.alpha().detach()) for i, rope in enumerate(self.model.learnable_rope_layers)
            if rope is not None
        }

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        inputs_embeds=None,
        speaker_emb=None,
        labels=None,
        use_cache=None,
        cache_position=None,
        logits_to_keep=0,
        **kwargs,
    ):
        """Like LFM2's forward, plus:

        - ``position_ids`` default to frame-level positions of ``input_ids`` (right padding);
        - ``speaker_emb`` (B, 128) is projected and inserted at index 1; ``attention_mask``,
          ``labels`` (aligned with ``input_ids``) and default positions are shifted to match;
        - an attention mask is always passed on (transformers cuts attention at repeated
          positions when it has none).
        """
        inputs = self._kani_inputs(input_ids, attention_mask, position_ids, past_key_values,
                                   inputs_embeds, speaker_emb, labels)
        return super().forward(
            past_key_values=past_key_values,
            use_cache=use_cache,
            cache_position=cache_position,
            logits_to_keep=logits_to_keep,
            **inputs,
            **kwargs,
        )

    def hidden_states(self, input_ids=None, attention_mask=None, speaker_emb=None,
                      **kwargs) -> torch.Tensor:
        """The final (normed) hidden states of a training forward, without the LM head: the
        chunked loss applies the head a slice of positions at a time."""
        inputs = self._kani_inputs(input_ids, attention_mask, None, None, None, speaker_emb, None)
        inputs.pop("labels")
        if self.config._attn_implementation == "sdpa":
            # The 4-D mask transformers would build for a padded batch, built here for every
            # batch: transformers would otherwise ask the device whether anything is padded.
            keys = inputs["attention_mask"].bool()
            length = keys.shape[1]
            causal = torch.ones(length, length, dtype=torch.bool, device=keys.device).tril()
            inputs["attention_mask"] = causal[None, None] & keys[:, None, None, :]
        return self.model(**inputs, use_cache=False, **kwargs).last_hidden_state

    def _kani_inputs(self, input_ids, attention_mask, position_ids, past_key_values,
                     inputs_embeds, speaker_emb, labels) -> dict:
        if inputs_embeds is None:
            inputs_embeds = self.model.embed_tokens(input_ids)
        batch, length = inputs_embeds.shape[:2]
        if position_ids is None:
            if input_ids is None or past_key_values is not None:
                raise ValueError("position_ids are required with inputs_embeds or a cache")
            position_ids = frame_position_ids(input_ids, self.audio_step)
        if attention_mask is None:
            past = past_key_values.get_seq_length() if past_key_values is not None else 0
            attention_mask = torch.ones(batch, past + length, dtype=torch.long,
                                        device=inputs_embeds.device)
        if speaker_emb is not None:
            projected = self.model.speaker_emb_projection(speaker_emb.to(inputs_embeds.dtype))
            inputs_embeds = insert_at_one(inputs_embeds, projected)
            attention_mask = insert_at_one(attention_mask, attention_mask[:, 0])
            position_ids = insert_at_one(position_ids + 1, position_ids[:, 0] + 1)
            position_ids[:, 0] -= 1
            if labels is not None:
                labels = insert_at_one(labels, torch.full_like(labels[:, 0], tokens.IGNORE_INDEX))
        # Always passed on, even when nothing is padded: zeroing with an all-true mask changes
        # nothing, and asking whether it is all true would wait for the device every step.
        padding = attention_mask[:, -inputs_embeds.shape[1]:].bool()
        return {"inputs_embeds": inputs_embeds, "attention_mask": attention_mask,
                "position_ids": position_ids, "labels": labels, PADDING_KWARG: padding}


def _layer_pre_hook(rope: LearnableRope | None):
    def hook(module, args, kwargs):
        padding = kwargs.pop(PADDING_KWARG, None)
        hidden = args[0] if args else kwargs.pop("hidden_states")
        if padding is not None:
            hidden = hidden.masked_fill(~padding[..., None], 0.0)
        if rope is not None:
            kwargs["position_embeddings"] = rope(kwargs["position_ids"], hidden.dtype)
        return (hidden, *args[1:]), kwargs

    return hook
