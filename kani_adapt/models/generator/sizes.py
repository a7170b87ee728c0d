"""Size presets for the generator (LFM2 shapes) and the KaniTTS2 keys added to its config."""
from __future__ import annotations

from kani_adapt import tokens
from kani_adapt.core.errors import ConfigError

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


# What a config.json may set, checked (type, lowest, highest) before a model is built from it.
_BIG = 1 << 24
CONFIG_SPEC = {
    "hidden_size": (int, 1, 1 << 16), "intermediate_size": (int, 1, 1 << 20),
    "num_hidden_layers": (int, 1, 1024), "num_attention_heads": (int, 1, 1024),
    "num_key_value_heads": (int, 1, 1024), "vocab_size": (int, 1, _BIG),
    "max_position_embeddings": (int, 1, _BIG), "conv_L_cache": (int, 1, 64),
    "block_multiple_of": (int, 1, 1 << 16), "block_ffn_dim_multiplier": (float, 0.01, 100.0),
    "rope_theta": (float, 1e-6, 1e12), "norm_eps": (float, 0.0, 1.0),
    "initializer_range": (float, 0.0, 10.0), "speaker_emb_dim": (int, 1, 1 << 16),
    "alpha_min": (float, 0.0, 1e6), "alpha_max": (float, 0.0, 1e6),
    "audio_step": (float, 1e-6, 1e6), "tokens_per_frame": (int, 1, 64),
    "audio_tokens_start": (int, 0, _BIG), "text_vocab_size": (int, 1, _BIG),
}


# What LFM2's config reads as "not set" when null (parameter_count follows it).
NULLABLE = ("block_ffn_dim_multiplier",)


def shape_problems(data: dict) -> list[str]:
    """Sizes that do not fit together (each alone passed CONFIG_SPEC)."""
    problems = []
    h, heads = data.get("hidden_size", 1024), data.get("num_attention_heads", 16)
    kv, layers = data.get("num_key_value_heads", heads), data.get("num_hidden_layers", 16)
    if h % heads:
        problems.append(f"hidden_size {h} is not a multiple of num_attention_heads {heads}")
    if heads % kv:
        problems.append(f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv}")
    types = data.get("layer_types")
    if types is not None and (not isinstance(types, list) or len(types) != layers
                              or not set(types) <= {"conv", "full_attention"}):
        problems.append(f"layer_types must list {layers} of 'conv' / 'full_attention'")
    return problems


def parameter_count(config) -> int:
    """Parameters of an LFM2 / KaniTTS2 model of this config (an ``Lfm2Config``), computed
    from its sizes without building it (LFM2's feed-forward width adjustment included)."""
    h, layers = config.hidden_size, config.num_hidden_layers
    ff = config.intermediate_size
    if config.block_auto_adjust_ff_dim:
        ff = int(2 * ff / 3)
        if config.block_ffn_dim_multiplier is not None:
            ff = int(config.block_ffn_dim_multiplier * ff)
        ff = config.block_multiple_of * -(-ff // config.block_multiple_of)
    head_dim = h // config.num_attention_heads
    attention = 2 * h * h + 2 * h * config.num_key_value_heads * head_dim + 2 * head_dim
    conv = 3 * h * h + h * config.conv_L_cache + h * h
    types = config.layer_types or ["conv"] * layers
    per_layer = sum(attention if t == "full_attention" else conv for t in types)
    return config.vocab_size * h + per_layer + layers * (3 * h * ff + 2 * h) + h \
        + getattr(config, "speaker_emb_dim", 128) * h
