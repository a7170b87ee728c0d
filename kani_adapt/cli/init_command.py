"""`kani-adapt init`: a KaniTTS2 generator in the official layout, random or from an LFM2 base."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.core.cli_kit import Formatter


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
