"""Loading the speaker embedder: a local folder, a hub id or ``tiny`` (built on this machine by
:mod:`kani_adapt.models.speaker.tiny`), its config checked before anything is allocated and every
weight required. The network and its files: :mod:`kani_adapt.models.speaker.network`.
"""
from __future__ import annotations

from pathlib import Path

from kani_adapt.config.defaults import SPEAKER_EMBEDDER_TINY

from kani_adapt.models.speaker.network import (DEFAULT_MODEL, MAX_SECONDS, SAMPLE_RATE, TINY_WAVLM,
                                               WEIGHTS, SpeakerEmbedder, build, make_config, pad,
                                               prepare, save, write_files)

__all__ = ["DEFAULT_MODEL", "MAX_SECONDS", "SAMPLE_RATE", "TINY_WAVLM", "WEIGHTS", "SpeakerEmbedder",
           "build", "load", "make_config", "pad", "prepare", "read_config", "save", "write_files"]

# the tiny embedder built on this machine (kani_adapt/models/speaker/tiny.py)
TINY = SPEAKER_EMBEDDER_TINY


# What the embedder's config.json may set (type, lowest, highest), checked before building.
CONFIG_SPEC = {
    "hidden_size": (int, 1, 1 << 15), "num_hidden_layers": (int, 1, 512),
    "num_attention_heads": (int, 1, 1024), "intermediate_size": (int, 1, 1 << 18),
    "embd_size": (int, 1, 1 << 15), "top_interm_size": (int, 1, 1 << 18),
    "num_conv_pos_embeddings": (int, 1, 1 << 12), "num_conv_pos_embedding_groups": (int, 1, 1 << 12),
    "num_buckets": (int, 1, 1 << 16), "max_bucket_distance": (int, 1, 1 << 20),
}


def parameter_count(config) -> int:
    """Parameters of an embedder of this ``WavLMConfig``, from its sizes (no model built)."""
    h, inter = config.hidden_size, config.intermediate_size
    convs = [1, *config.conv_dim]
    features = sum(k * a * b for k, a, b in zip(config.conv_kernel, convs, convs[1:]))
    positional = h * h // config.num_conv_pos_embedding_groups * config.num_conv_pos_embeddings
    layers = config.num_hidden_layers * (4 * h * h + 2 * h * inter + 9 * h + inter)
    top = 2 * h * config.top_interm_size + config.top_interm_size * config.embd_size
    return features + convs[-1] * h + positional + layers + top


def read_config(folder: Path):
    """config.json as a ``WavLMConfig``, its sizes and the memory they imply checked first."""
    from transformers import WavLMConfig

    from kani_adapt.core.errors import CheckpointError
    from kani_adapt.core.model_files import check_fits, check_values, read_json_object

    path = folder / "config.json"
    raw = read_json_object(path)
    absent = [k for k in ("embd_size", "top_interm_size") if k not in raw]
    if raw.get("model_type") != "wavlm" or absent:
        raise CheckpointError(
            f"{path} is not a WavLM speaker-embedder config (model_type "
            f"{raw.get('model_type')!r}, missing {absent}); expected the layout of {DEFAULT_MODEL}"
        )
    check_values(path, raw, CONFIG_SPEC, "a speaker-embedder config")
    convs = [raw.get(k, [1]) for k in ("conv_dim", "conv_kernel", "conv_stride")]
    if not all(isinstance(c, list) and c and all(type(v) is int and 1 <= v <= 1 << 14 for v in c)
               and len(c) == len(convs[0]) for c in convs):
        raise CheckpointError(f"{path}: conv_dim, conv_kernel and conv_stride must be lists of "
                              "one length of positive integers; fix it or download it again")
    config = WavLMConfig.from_dict(raw)
    if config.hidden_size % config.num_attention_heads:
        raise CheckpointError(f"{path}: hidden_size {config.hidden_size} is not a multiple of "
                              f"num_attention_heads {config.num_attention_heads}")
    params = parameter_count(config)
    check_fits(path, params, 4 * params + (folder / WEIGHTS).stat().st_size, "speaker embedder")
    return config


def load(path_or_id: str = DEFAULT_MODEL, device: str = "cpu") -> SpeakerEmbedder:
    """From a local folder, a hub id or ``tiny``; every weight must be present (no silent random
    init)."""
    from safetensors.torch import load_file

    from kani_adapt.core.errors import CheckpointError
    from kani_adapt.core.hub import resolve_folder

    if path_or_id == TINY:
        from kani_adapt.models.speaker.tiny import cached_folder

        path_or_id = str(cached_folder())
    folder = resolve_folder(path_or_id, required=("config.json", WEIGHTS))
    model = SpeakerEmbedder(read_config(folder))
    state = load_file(str(folder / WEIGHTS))
    try:  # strict, after torch's own weight_g/weight_v -> parametrizations conversion hook
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise CheckpointError(f"{folder / WEIGHTS} does not match its config.json ({first[:300]})"
                              ) from None
    return model.to(device).eval()
