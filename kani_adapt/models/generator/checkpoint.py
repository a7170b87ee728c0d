"""Generator checkpoints in the official KaniTTS2 layout (format page, section 6).

One code path loads real and test weights alike: a local directory or a hub id, checked key by
key, because the official loader's ``strict=False`` would otherwise hide a missing speaker
projection or RoPE scale.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoTokenizer, Lfm2Config, Lfm2ForCausalLM

from kani_adapt.text import frontend
from kani_adapt.config import sampling as sampling_settings
from kani_adapt import tokens
from kani_adapt.core.atomic import write_folder
from kani_adapt.core.errors import CheckpointError, DataError
from kani_adapt.core.model_files import check_fits, check_values, read_json_object
from kani_adapt.core.hub import resolve_folder as resolve  # noqa: F401 (callers say checkpoint.resolve)
from kani_adapt.models.generator import sizes
from kani_adapt.models.generator.bundle import Generator
from kani_adapt.models.generator.model import KaniTTS2ForCausalLM
from kani_adapt.models.generator.tokenizer import (
    add_kani_tokens, build_offline_text_tokenizer, check_kani_tokenizer,
)

WEIGHTS = "model.safetensors"
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}
TIED_KEYS = {"lm_head.weight"}
GENERATION_CONFIG = "generation_config.json"
TEXT_LAYOUT = "text_layout.json"  # short texts repeated (kani_adapt.tokens.TextLayout); absent: plain
# A second copy of the 16138 added tokens (tokenizer.json has them); not in the official layout.
DROPPED_TOKENIZER_FILES = {"added_tokens.json"}


def build_base(size: str, seed: int = 0) -> tuple[Lfm2ForCausalLM, object]:
    """A plain LFM2 base of a preset size with random weights and the offline tokenizer."""
    torch.manual_seed(seed)
    config = Lfm2Config(**sizes.base_config_kwargs(size))
    return Lfm2ForCausalLM(config), build_offline_text_tokenizer()


def convert_base(
    base: Lfm2ForCausalLM,
    tokenizer,
    *,
    audio_step: float = 1.0,
    alpha_min: float = 0.1,
    alpha_max: float = 2.0,
    alpha_init: str = "identity",
    seed: int = 0,
) -> KaniTTS2ForCausalLM:
    """Turn a plain LFM2 model into a KaniTTS2 generator, keeping every base weight.

    Adds the 16138 KaniTTS2 tokens to ``tokenizer`` (in place), resizes the embeddings to
    80538 (new rows: mean of the old rows plus small noise), and creates the speaker projection
    and RoPE scales. ``alpha_init="identity"`` starts every scale at 1.0 so that text logits are
    exactly those of the base; ``"official"`` starts at ``alpha_weight = 0`` (alpha ~1.05) as
    the official pretraining does.
    """
    if alpha_init not in ("identity", "official"):
        raise CheckpointError(f"alpha_init must be 'identity' or 'official', got {alpha_init!r}")
    _refuse_untied_head(base)
    add_kani_tokens(tokenizer)
    config_dict = base.config.to_dict()
    config_dict["tie_word_embeddings"] = True  # KaniTTS2 ties; an untied head was refused above
    config_dict.update(sizes.kani_config_keys(
        audio_step=audio_step, alpha_min=alpha_min, alpha_max=alpha_max
    ))
    config = Lfm2Config.from_dict(config_dict)
    torch.manual_seed(seed)
    model = KaniTTS2ForCausalLM(config)
    state = {k: v for k, v in base.state_dict().items() if k not in TIED_KEYS}
    old = state.pop("model.embed_tokens.weight")
    new = model.model.embed_tokens.weight.detach().clone()
    keep = min(len(old), len(new))
    new[:keep] = old[:keep]
    if keep < len(new):
        noise = torch.randn(len(new) - keep, new.shape[1]) * config.initializer_range * 0.1
        new[keep:] = old.float().mean(0) + noise
    state["model.embed_tokens.weight"] = new
    expected_new = _kani_only_keys(model)
    result = model.load_state_dict(state, strict=False)
    missing = set(result.missing_keys) - expected_new - TIED_KEYS
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"base model does not match the LFM2 layout: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(result.unexpected_keys)[:5]}"
        )
    model.tie_weights()
    for rope in model.model.learnable_rope_layers:
        if rope is not None and alpha_init == "identity":
            rope.set_alpha(1.0)
    return model


def read_config(folder: Path, copies: int = 1) -> Lfm2Config:
    """A model folder's config.json, checked before anything is built from it: every size of
    the right type and range, sizes that fit together, and the memory the model implies
    (``copies`` fp32 models plus the weights file) within what this process can get."""
    path = Path(folder) / "config.json"
    data = read_json_object(path)
    check_values(path, data, sizes.CONFIG_SPEC, "an LFM2 / KaniTTS2 config", sizes.NULLABLE)
    problems = sizes.shape_problems(data)
    if problems:
        raise CheckpointError(f"{path}: {'; '.join(problems)}; fix it or download it again")
    config = Lfm2Config.from_dict(data)
    params = sizes.parameter_count(config)
    weights = Path(folder) / WEIGHTS
    on_disk = weights.stat().st_size if weights.is_file() else 0
    check_fits(path, params, copies * 4 * params + on_disk, "generator")
    return config


def init_from_base(path_or_id: str, **options) -> tuple[KaniTTS2ForCausalLM, object]:
    """Load a plain LFM2 checkpoint (directory or hub id) and convert it (see convert_base)."""
    path = resolve(path_or_id, ("config.json", "tokenizer.json"))
    config = read_config(path, copies=2).to_dict()  # the base, then the converted model
    if config.get("use_learnable_rope"):
        raise CheckpointError(
            f"{path_or_id} is already a KaniTTS2 checkpoint; load it instead of --base"
        )
    tokenizer = load_tokenizer(path)
    base = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32)
    return convert_base(base, tokenizer, **options), tokenizer


def load_tokenizer(path: Path):
    """The tokenizer of a model folder; a damaged file or a class this transformers does not
    know is one line naming the file."""
    import transformers

    path = Path(path)
    config = path / "tokenizer_config.json"
    try:
        return AutoTokenizer.from_pretrained(path)
    except (ValueError, OSError, KeyError, AttributeError, TypeError) as err:
        name = _tokenizer_class(config)
        if name is None or "does not exist" not in str(err) and "not supported" not in str(err):
            raise _damaged_tokenizer(path, err) from None
        raise CheckpointError(
            f"{config}: transformers {transformers.__version__} cannot load tokenizer class "
            f"{name!r} ({type(err).__name__}); install a transformers version that knows it"
        ) from None
    except Exception as err:  # the tokenizers library raises plain Exception for a bad file
        raise _damaged_tokenizer(path, err) from None


def _tokenizer_class(config: Path) -> str | None:
    try:
        return read_json_object(config).get("tokenizer_class") if config.is_file() else None
    except CheckpointError:
        return None


def _damaged_tokenizer(path: Path, err: Exception) -> CheckpointError:
    files = [f for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
             if (path / f).is_file()]
    where = path / files[0] if files else path
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
    return CheckpointError(f"{where}: the tokenizer does not load ({first}); copy the model's "
                           "tokenizer files again")


def _refuse_untied_head(base: Lfm2ForCausalLM) -> None:
    """KaniTTS2 ties lm_head to the embeddings; re-tying an untied base would silently replace
    its trained output layer."""
    head, embed = base.lm_head.weight, base.model.embed_tokens.weight
    if head.data_ptr() != embed.data_ptr() and not torch.equal(head, embed):
        raise CheckpointError(
            "the base's lm_head is not tied to its embeddings (tie_word_embeddings: false in "
            "config.json, with its own lm_head.weight); KaniTTS2 ties them, so converting it "
            "would discard the trained output layer: use a tied LFM2 base"
        )


def save_checkpoint(
    generator: Generator,
    out_dir: str | os.PathLike,
    *,
    dtype: str = "bf16",
    language_tags: list[str] | None = None,
    weights: bool = True,
) -> Path:
    """Write the official layout: config.json, one model.safetensors, tokenizer files,
    generation_config.json. Written to a temporary folder first and then moved into place.

    The bundle's other parts go beside them: generation_config.json carries its sampling values
    (else the built-in fallbacks), text_frontend.json how its texts are read (when one is
    known), text_layout.json how its prompts are laid out (when it repeats short texts)."""
    if dtype not in DTYPES:
        raise CheckpointError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    model, tokenizer = generator.model, generator.tokenizer
    check_kani_tokenizer(tokenizer)

    def write(tmp: Path) -> None:
        _write_config(model.config, tmp / "config.json", dtype, language_tags)
        if weights:  # without: the config, tokenizer and settings alone (a run's base folder)
            state = {
                k: v.detach().to(DTYPES[dtype]).contiguous().cpu()
                for k, v in model.state_dict().items() if k not in TIED_KEYS
            }
            save_file(state, tmp / WEIGHTS, metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)  # every tokenizer file, chat_template.jinja included
        for extra in DROPPED_TOKENIZER_FILES & set(os.listdir(tmp)):
            (tmp / extra).unlink()
        _write_generation_config(tmp / GENERATION_CONFIG, generator.sampling)
        if generator.text_frontend is not None:
            frontend.write(tmp, generator.text_frontend, language_tags or ())
        write_layout(tmp, generator.text_layout)

    return write_folder(out_dir, write)


def load_checkpoint(
    path_or_id: str,
    *,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str = "sdpa",
) -> Generator:
    """Load a KaniTTS2 checkpoint with its full state dict (refusing any key mismatch), with the
    tokenizer, text frontend, prompt layout and sampling values stored beside it."""
    path = resolve(path_or_id, ("config.json", WEIGHTS))
    config = read_config(path)
    config._attn_implementation = attn_implementation
    model = KaniTTS2ForCausalLM(config)  # raises CheckpointError for non-KaniTTS2 configs
    state = {}
    with safe_open(path / WEIGHTS, framework="pt") as f:
        for key in f.keys():
            state[key] = f.get_tensor(key)
    expected = set(model.state_dict())
    missing = sorted(expected - set(state) - TIED_KEYS)
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{path / WEIGHTS} does not match the KaniTTS2 generator: "
            f"missing {missing[:6]}{' ...' if len(missing) > 6 else ''}, "
            f"unexpected {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}; "
            "refusing to continue with re-initialised weights"
        )
    shapes = [k for k in state if state[k].shape != model.state_dict()[k].shape]
    if shapes:
        raise CheckpointError(f"{path / WEIGHTS}: shapes differ from config.json for {shapes[:4]}")
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    model.to(dtype)
    tokenizer = load_tokenizer(path)
    check_kani_tokenizer(tokenizer)
    return Generator(model.eval(), tokenizer, text_frontend=frontend.read(path),
                     text_layout=read_layout(path), sampling=read_sampling(path))


def write_layout(folder: Path, layout: tokens.TextLayout) -> None:
    """``text_layout.json`` in ``folder`` when ``layout`` repeats short texts (none: plain)."""
    if layout.enabled:
        from kani_adapt.core import atomic

        atomic.write_text(Path(folder) / TEXT_LAYOUT, json.dumps(layout.identity(), indent=1))


def read_layout(folder: Path) -> tokens.TextLayout:
    path = Path(folder) / TEXT_LAYOUT
    if not path.is_file():
        return tokens.TextLayout()
    try:
        return tokens.TextLayout.from_identity(read_json_object(path))
    except (ValueError, TypeError, DataError) as err:
        raise CheckpointError(f"{path}: unreadable text layout ({err}); fix or delete it") from None


def read_sampling(folder: Path) -> dict:
    """The sampling values a checkpoint's generation_config.json sets (only those), in
    :class:`kani_adapt.config.sampling.SamplingConfig` names. ``do_sample: false`` means greedy (temperature 0)."""
    path = Path(folder) / GENERATION_CONFIG
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        out = {}
        if data.get("do_sample") is False:
            out["temperature"] = 0.0
        elif data.get("temperature") is not None:
            out["temperature"] = float(data["temperature"])
        for key in ("top_p", "repetition_penalty"):
            if data.get(key) is not None:
                out[key] = float(data[key])
        if data.get("max_new_tokens") is not None:  # SOA, SOS and EOS besides 4 per frame
            out["max_frames"] = max(1, (int(data["max_new_tokens"]) - 3) // 4)
    except (ValueError, TypeError, AttributeError) as err:
        raise CheckpointError(f"{path}: unreadable sampling values ({err}); fix or delete it"
                              ) from None
    return out


def _write_generation_config(path: Path, sampling: dict) -> None:
    """All values written out (transformers' own writer omits those equal to its defaults,
    which would read back as 'not set')."""
    import transformers

    s = {**sampling_settings.defaults(), **sampling}
    data = {"bos_token_id": tokens.BOS, "eos_token_id": tokens.END_OF_SPEECH,
            "pad_token_id": tokens.PAD, "do_sample": s["temperature"] > 0,
            "top_p": s["top_p"], "repetition_penalty": s["repetition_penalty"],
            "max_new_tokens": 4 * int(s["max_frames"]) + 3,
            "transformers_version": transformers.__version__}
    if s["temperature"] > 0:
        data["temperature"] = s["temperature"]
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _write_config(config, path: Path, dtype: str, language_tags: list[str] | None) -> None:
    """config.json with the KaniTTS2 keys; dtype is written under both its new name and the
    ``torch_dtype`` that the transformers versions of the official runtime read."""
    data = config.to_diff_dict()
    data.pop("_attn_implementation", None)
    data["architectures"] = ["KaniTTS2ForCausalLM"]
    data["tie_word_embeddings"] = True
    data["dtype"] = data["torch_dtype"] = str(DTYPES[dtype]).removeprefix("torch.")
    if language_tags is not None:
        data["language_settings"] = sizes.language_settings(language_tags)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _kani_only_keys(model: KaniTTS2ForCausalLM) -> set[str]:
    return {k for k in model.state_dict()
            if k.startswith(("model.speaker_emb_projection", "model.learnable_rope_layers"))}
