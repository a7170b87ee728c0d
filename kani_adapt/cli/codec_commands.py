"""`kani-adapt codec ...`: readiness check, fine-tuning, export. Heavy imports inside commands."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.config.defaults import MAX_CLIP_SECONDS
from kani_adapt.core.cli_kit import Formatter, Parser, add_overrides
from kani_adapt.core import console


def add_codec(sub) -> None:
    p = sub.add_parser(
        "codec", formatter_class=Formatter,
        help="NanoCodec: readiness check on a corpus, fine-tuning, export",
        description=(
            "Work on the NanoCodec that turns KaniTTS2's tokens into audio.\n\n"
            "check   round-trip a corpus sample and say whether the codec copes with it\n"
            "train   fine-tune the codec (decoder by default, keeping every token valid)\n"
            "export  write a plain .nemo codec from a training run"
        ),
    )
    codec_sub = p.add_subparsers(dest="codec_command", metavar="SUBCOMMAND", parser_class=Parser)
    _add_check(codec_sub)
    _add_train(codec_sub)
    _add_export(codec_sub)


def _add_check(sub) -> None:
    p = sub.add_parser(
        "check", formatter_class=Formatter,
        help="readiness report: round-trip quality per speaker and tag",
        description=(
            "Round-trips a sample of the corpus through the codec and reports, per speaker and\n"
            "per tag, mel distance, multi-resolution STFT distance, SI-SDR and STOI, and the share\n"
            "of clips beyond the thresholds. --compare scores a second (fine-tuned) codec on the\n"
            "same clips, side by side. Writes codec_check.md, codec_check.json, index.html (players\n"
            "for every clip and its round trips) and wavs/ into --out and\n"
            "prints the verdict line."
        ),
    )
    p.add_argument("--codec", required=True, metavar="PATH_OR_ID",
                   help=".nemo file, hub id (nvidia/nemo-nano-codec-22khz-0.6kbps-12.5fps) or "
                        "a size name (tiny, 0.6kbps: random weights, for testing)")
    p.add_argument("--manifest", required=True, type=Path, help="NeMo manifest (JSON lines)")
    p.add_argument("--compare", metavar="PATH_OR_ID", help="second codec scored side by side")
    p.add_argument("--out", type=Path, default=Path("codec-check"), help="output folder")
    p.add_argument("--max-clips", type=int, default=50, help="clips to round-trip")
    p.add_argument("--max-seconds", type=float, default=MAX_CLIP_SECONDS,
                   help="seconds used per clip")
    p.add_argument("--mel-max", type=float, default=0.35, help="poor clip above this mel distance")
    p.add_argument("--stoi-min", type=float, default=0.80, help="poor clip below this STOI")
    p.add_argument("--si-sdr-min", type=float, default=None, help="poor clip below this SI-SDR (dB)")
    p.add_argument("--poor-share-max", type=float, default=0.10,
                   help="a group with a larger share of poor clips needs fine-tuning")
    p.add_argument("--seed", type=int, default=0, help="seed of the clip sample")
    p.set_defaults(func=run_check)


def run_check(args) -> int:
    from kani_adapt.codec.check import Thresholds, run_check as check, write_report
    from kani_adapt.codec.manifest import read_manifest
    from kani_adapt.codec.registry import load_codec
    from kani_adapt.core.errors import ConfigError

    if args.max_clips < 1 or args.max_seconds <= 0:
        raise ConfigError("--max-clips must be at least 1 and --max-seconds positive")
    limits = Thresholds(mel_max=args.mel_max, stoi_min=args.stoi_min, si_sdr_min=args.si_sdr_min,
                        poor_share_max=args.poor_share_max)
    clips = read_manifest(args.manifest)
    codecs = {"base": (args.codec, load_codec(args.codec))}
    if args.compare:
        codecs["compare"] = (args.compare, load_codec(args.compare))
    reports = check(codecs, clips, limits, args.max_clips, args.max_seconds, args.seed,
                    audio_dir=args.out / "wavs")
    md, js = write_report(reports, limits, args.out)
    for name, report in reports.items():
        print(console.shown(f"{name} ({report['source']}): {report['verdict']}"))
    print(f"wrote {md}, {js} and {args.out / 'index.html'} (players)")
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", formatter_class=Formatter,
        help="fine-tune the codec (modes: decoder, full, lora)",
        description=(
            "Fine-tune NanoCodec with NeMo's own GAN training step under Lightning.\n"
            "CONFIG is a YAML file of codec training keys; KEY=VALUE settings use their dotted\n"
            "names. The run directory (run_dir) receives config.yaml, checkpoints, TensorBoard\n"
            "events and metrics. --resume RUN_DIR continues an interrupted run exactly, reading\n"
            "only RUN_DIR (KEY=VALUE limited to max_steps and cadences)."
        ),
    )
    p.add_argument("config", nargs="?", type=Path, metavar="CONFIG", help="YAML config")
    add_overrides(p, "optim.lr=1e-4 max_steps=2000")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue this run")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    from kani_adapt.config.load import load_config
    from kani_adapt.core.errors import ConfigError
    from kani_adapt.training.codec.config import CodecTrainConfig

    if args.resume is not None and args.config is not None:
        raise ConfigError(f"give a CONFIG file or --resume RUN_DIR, not both ({args.config}: "
                          "a resumed run reads only its own config.yaml)")
    if args.resume is None and args.config is None:
        raise ConfigError("give a CONFIG file, or --resume RUN_DIR")
    if args.resume is None:
        load_config(CodecTrainConfig, args.config, args.overrides)  # its errors before torch, NeMo
    from kani_adapt.training.codec.train import resume_run, start_run

    if args.resume is not None:
        summary = resume_run(args.resume, args.overrides)
    else:
        summary = start_run(args.config, args.overrides)
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export", formatter_class=Formatter,
        help="write a plain .nemo codec from a training run",
        description=(
            "Reads RUN_DIR (config.yaml and the last checkpoint) and writes a plain .nemo codec\n"
            "without discriminators. LoRA runs are merged into it, and their adapter is also\n"
            "written beside it as OUT.adapter.safetensors (small, applied on top of the base)."
        ),
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="training run directory")
    p.add_argument("--out", required=True, type=Path, help="output .nemo file")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to export (default: the last)")
    p.set_defaults(func=run_export)


def run_export(args) -> int:
    from kani_adapt.training.codec.train import export_run

    for key, value in export_run(args.run_dir, args.out, args.checkpoint).items():
        print(f"{key}: {value}")
    return 0
