"""The generator commands: init and generate. Heavy imports happen inside each command."""
from __future__ import annotations

import argparse
from pathlib import Path

from kani_adapt.cli.common import add_device
from kani_adapt.errors import ConfigError, DataError


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written; shows a default only where there is one worth reading
    (not on required arguments, flags, or options whose help already states it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default in (None, False, argparse.SUPPRESS) or action.required
                or "default" in text or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def add_init(sub) -> None:
    p = sub.add_parser(
        "init", formatter_class=Formatter,
        help="create a KaniTTS2 generator (random, or from a plain LFM2 base)",
        description=(
            "Create a KaniTTS2 generator in the official checkpoint layout.\n\n"
            "--size builds random weights with a small offline tokenizer (for tests and demos).\n"
            "--base converts a plain LFM2 checkpoint (directory or hub id, e.g. "
            "LiquidAI/LFM2-350M):\nadds the 16138 KaniTTS2 tokens, resizes the embeddings to "
            "80538, and creates the\nspeaker projection and the per-layer RoPE scales. Text "
            "behaviour is kept exactly\nwith --alpha-init identity."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--size", choices=["tiny", "350m"], help="random weights of this shape")
    src.add_argument("--base", metavar="PATH_OR_ID", help="plain LFM2 checkpoint to convert")
    p.add_argument("--out", required=True, type=Path, help="output directory (replaced)")
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16",
                   help="weight dtype on disk (the official trainer stores bf16)")
    p.add_argument("--audio-step", type=float, default=1.0,
                   help="position advance per audio frame (official: 1.0)")
    p.add_argument("--alpha-min", type=float, default=0.1, help="lower bound of RoPE scales")
    p.add_argument("--alpha-max", type=float, default=2.0, help="upper bound of RoPE scales")
    p.add_argument("--alpha-init", choices=["identity", "official"], default="identity",
                   help="RoPE scales start at 1.0 (identity) or at alpha_weight=0 (~1.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.set_defaults(func=run_init)


def run_init(args) -> int:
    from kani_adapt.models.generator import checkpoint

    options = dict(audio_step=args.audio_step, alpha_min=args.alpha_min,
                   alpha_max=args.alpha_max, alpha_init=args.alpha_init, seed=args.seed)
    if args.size:
        base, tokenizer = checkpoint.build_base(args.size, seed=args.seed)
        model = checkpoint.convert_base(base, tokenizer, **options)
    else:
        model, tokenizer = checkpoint.init_from_base(args.base, **options)
    out = checkpoint.save_checkpoint(model, tokenizer, args.out, dtype=args.dtype)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {out} ({params / 1e6:.1f} M parameters, {args.dtype})")
    return 0


def add_generate(sub) -> None:
    p = sub.add_parser(
        "generate", formatter_class=Formatter,
        help="generate NanoCodec codes for text with a KaniTTS2 checkpoint",
        description=(
            "Generate NanoCodec codes (frames x 4, saved with numpy) for each --text.\n"
            "One --text writes --out; several write OUT_0.npy, OUT_1.npy, ... (one batch).\n"
            "Decoding the codes to audio needs a codec (not part of this command yet).\n\n"
            "Sampling values you do not set come from the checkpoint's generation_config.json,\n"
            "else from the built-in fallbacks: temperature 0.7, top-p 0.95, repetition\n"
            "penalty 1.1, 500 frames."
        ),
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="KaniTTS2 directory or hub id")
    p.add_argument("--text", action="append", required=True, help="text to speak (repeatable)")
    p.add_argument("--tag", help="language/accent tag, e.g. de_hessian (stored lower-case)")
    p.add_argument("--speaker-emb", type=Path, metavar="FILE",
                   help=".npy file with a 128-d speaker embedding")
    p.add_argument("--out", type=Path, required=True, help="output .npy file")
    # None = not set by the user: the checkpoint's generation_config.json decides
    p.add_argument("--temperature", type=float, default=None, help="0 = greedy")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass")
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--max-frames", type=int, default=None, help="cap (12.5 frames per second)")
    p.add_argument("--no-constrain", action="store_true",
                   help="sample over the whole vocabulary instead of the expected codebook")
    p.add_argument("--seed", type=int, default=None)
    add_device(p, "the generator (and the codec)")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                   help="compute dtype (bf16 for GPUs)")
    p.add_argument("--codec", metavar="CODEC",
                   help="also decode to a .wav beside each .npy with this codec (a size such as "
                        "tiny, a .nemo file or a hub id)")
    p.set_defaults(func=run_generate)


def run_generate(args) -> int:
    import numpy as np
    import torch

    from kani_adapt import tokens
    from kani_adapt.atomic import write_audio, write_npy
    from kani_adapt.devices import resolve
    from kani_adapt.models.generator.checkpoint import load_checkpoint
    from kani_adapt.models.generator.generate import SamplingConfig
    from kani_adapt.models.generator.synthesize import synthesize

    if args.out.suffix != ".npy":
        raise ConfigError(f"--out {args.out}: use a .npy file name")
    speaker = None if args.speaker_emb is None else load_speaker_embedding(args.speaker_emb)
    device, codec = resolve(args.device), None
    if args.codec:
        from kani_adapt.codec.registry import load_codec

        codec = load_codec(args.codec, device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    model, tokenizer = load_checkpoint(args.checkpoint, dtype=dtype)
    model.to(device)
    values = sampling_values(args, model.sampling_defaults)
    sampling = SamplingConfig(**values, constrain_audio=not args.no_constrain, seed=args.seed)
    rows = synthesize(model, tokenizer, codec, args.text, args.tag, speaker, sampling)
    outs = [args.out] if len(rows) == 1 else [
        args.out.with_name(f"{args.out.stem}_{i}.npy") for i in range(len(rows))
    ]
    for row, out in zip(rows, outs):
        codes = row.codes.astype(np.int32)
        write_npy(out, codes)
        cap = " (hit --max-frames: no end of speech)" if row.hit_length_cap else ""
        secs = len(row.codes) / tokens.FRAMES_PER_SECOND
        print(f"wrote {out}: {len(row.codes)} frames, {secs:.2f} s{cap}")
        if row.audio is not None:
            wav = write_audio(out.with_suffix(".wav"), row.audio, row.sample_rate)
            print(f"wrote {wav}: {len(row.audio) / row.sample_rate:.2f} s at {row.sample_rate} Hz")
    return 0



def sampling_values(args, from_checkpoint: dict) -> dict:
    """The user's values, else the checkpoint's generation_config.json, else the fallbacks."""
    from kani_adapt.models.generator.checkpoint import SAMPLING_FALLBACK

    given = {"temperature": args.temperature, "top_p": args.top_p,
             "repetition_penalty": args.repetition_penalty, "max_new_frames": args.max_frames}
    return {key: given[key] if given[key] is not None
            else from_checkpoint.get(key, SAMPLING_FALLBACK[key]) for key in given}


def load_speaker_embedding(path: Path):
    """A 128-float vector from a .npy file; errors name the file and the fix."""
    import numpy as np

    try:
        vec = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read a numpy array ({err}); save one with numpy.save") from err
    if np.size(vec) != 128 or not np.issubdtype(np.asarray(vec).dtype, np.number):
        raise DataError(f"{path}: need 128 floats, got shape {np.shape(vec)} ({np.asarray(vec).dtype})")
    vec = np.asarray(vec, dtype=np.float32).reshape(128)
    if not np.all(np.isfinite(vec)):
        raise DataError(f"{path}: the speaker embedding contains NaN or infinite values")
    return vec
