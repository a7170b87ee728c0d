"""Size presets for the generator (LFM2 shapes) and the KaniTTS2 keys added to its config."""
from __future__ import annotations

from kani_adapt import tokens
from kani_adapt.errors import ConfigError

# LFM2 config fields per size. `350m` is LiquidAI/LFM2-350M (format page, section 7).
SIZES: dict[str, dict] = {
    "tiny": dict(
        hidden_size=64,
        intermediate_size=192,
        block_auto_adjust_ff_dim=False,
        num_hidden_layers=4,
        layer_types=["conv", "full_attention", "conv", "full_attention"],
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    ),
    "350m": dict(
        hidden_size=1024,
        intermediate_size=6656,  # auto-adjusted by LFM2 to 4608
        block_auto_adjust_ff_dim=True,
        block_multiple_of=256,
        block_ffn_dim_multiplier=1.0,
        num_hidden_layers=16,
        layer_types=[
            "full_attention" if i in (2, 5, 8, 10, 12, 14) else "conv" for i in range(16)
        ],
        num_attention_heads=16,
        num_key_value_heads=8,
        max_position_embeddings=128_000,
    ),
}

# Fields shared by every size (LFM2 defaults spelled out so a saved config is explicit).
COMMON = dict(
    rope_theta=1_000_000.0,
    norm_eps=1e-5,
    conv_L_cache=3,
    conv_bias=False,
    tie_word_embeddings=True,
    initializer_range=0.02,
    pad_token_id=0,
    bos_token_id=tokens.BOS,
    eos_token_id=tokens.END_OF_TEXT,
)


def base_config_kwargs(size: str) -> dict:
    """LFM2 config fields of a plain base model of this size (text vocabulary only)."""
    if size not in SIZES:
        raise ConfigError(f"unknown generator size {size!r}; choose one of {', '.join(SIZES)}")
    # LFM2 pads its embedding matrix to 65536 rows; its tokenizer has 64400 entries.
    return {**COMMON, **SIZES[size], "vocab_size": 65536}


def kani_config_keys(
    *, audio_step: float = 1.0, alpha_min: float = 0.1, alpha_max: float = 2.0,
    language_tags: list[str] | None = None,
) -> dict:
    """The keys KaniTTS2 adds to an LFM2 config.json (format page, section 6)."""
    if not 0 < alpha_min < alpha_max:
        raise ConfigError(f"need 0 < alpha_min < alpha_max, got {alpha_min} and {alpha_max}")
    if audio_step <= 0:
        raise ConfigError(f"audio_step must be positive, got {audio_step}")
    return {
        "architectures": ["KaniTTS2ForCausalLM"],
        "use_learnable_rope": True,
        "alpha_min": float(alpha_min),
        "alpha_max": float(alpha_max),
        "audio_step": float(audio_step),
        "tokens_per_frame": tokens.TOKENS_PER_FRAME,
        "speaker_emb_dim": 128,
        "audio_tokens_start": tokens.AUDIO_TOKENS_START,
        "text_vocab_size": tokens.TEXT_VOCAB_SIZE,
        "vocab_size": tokens.VOCAB_SIZE,
        "language_settings": language_settings(language_tags),
    }


def language_settings(tags: list[str] | None) -> dict:
    """The `language_settings` block the official runtime reads (`status`, `language_tags_list`)."""
    tags = sorted({t.strip().lower() for t in tags or [] if t.strip()})
    if not tags:
        return {"status": "no_language_tags", "language_tags_list": []}
    return {"status": "available_language_tags", "language_tags_list": tags}
