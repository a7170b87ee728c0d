"""`data-tools`: the data preparation stages, one command each, plus `prepare` for all of them.

Every command takes the data config (YAML; see data_tools/config.py for every key and default).
Stages are resumable: re-running one skips finished work.
"""
from __future__ import annotations

import argparse
import sys

from kani_adapt.cli.common import Parser, run_cli

DESCRIPTION = """\
Turn community recordings into KaniTTS2 training data, one resumable stage at a time:
  ingest -> segment -> align (where MFA is installed) -> filter -> embed -> tokenize -> write
`data-tools prepare DATA_CONFIG` runs them all; `data-tools check DATA_CONFIG` shows the
resolved config. Rejected items and their reasons land in <work>/rejected.jsonl.
"""
STAGES = {
    "ingest": "read recordings and transcripts (folder, LJSpeech, Common Voice) as mono clips",
    "segment": "trim silence with silero-vad; cut long untranscribed audio at pauses",
    "align": "Montreal Forced Aligner: reject poor alignments, trim to words, split long clips",
    "filter": "duration, clipping, SNR, silence, speaking rate, sample rate, duplicates; text",
    "embed": "128-d speaker embeddings per clip and per-speaker means",
    "tokenize": "codec codes in length-bucketed batches (--shard I/N for parallel runs)",
    "write": "Hugging Face dataset + parquet, NeMo manifest, Markdown/JSON report",
}


def _config(args):
    from data_tools.config import load_config

    return load_config(args.config)


def cmd_stage(args) -> int:
    from pathlib import Path

    from data_tools import align, embed, ingest, segment, stage, tokenize, write
    from data_tools import filter as filter_stage
    from data_tools.records import read_manifest

    cfg = _config(args)
    work, budget = Path(cfg.work), cfg.max_rejected_fraction
    if args.command == "ingest":
        utts = ingest.run(cfg.ingest, work, budget)
    elif args.command == "write":
        out = write.run(cfg.write, work, write.expected(work))
        print(f"dataset written to {out}")
        return 0
    else:
        inputs = read_manifest(stage.input_manifest(work, args.command))
        if args.command == "tokenize":
            from data_tools.codecs import load_codec
            codec = load_codec(cfg.tokenize.codec, cfg.tokenize.device)
            utts = tokenize.run(cfg.tokenize, work, inputs, codec,
                                tokenize.parse_shard(args.shard), budget)
        else:
            module = {"segment": segment, "align": align, "filter": filter_stage, "embed": embed}
            utts = module[args.command].run(getattr(cfg, args.command), work, inputs,
                                            max_rejected_fraction=budget)
    print(f"{args.command}: {len(utts)} clips kept; rejections in {work / 'rejected.jsonl'}")
    return 0


def cmd_prepare(args) -> int:
    from data_tools import prepare

    out = prepare.run(_config(args))
    print(f"dataset written to {out} (report: {out / 'report.md'})")
    return 0


def cmd_check(args) -> int:
    import dataclasses

    import yaml

    print(yaml.safe_dump(dataclasses.asdict(_config(args)), sort_keys=False), end="")
    return 0


def build_parser() -> Parser:
    parser = Parser(prog="data-tools", description=DESCRIPTION,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, help_text in STAGES.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("config", help="data config (YAML)")
        if name == "tokenize":
            p.add_argument("--shard", default="0/1",
                           help="I/N: handle only shard I of N (independent processes)")
        p.set_defaults(func=cmd_stage)
    p = sub.add_parser("prepare", help="run every stage in order")
    p.add_argument("config", help="data config (YAML)")
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("check", help="print the fully resolved data config")
    p.add_argument("config", help="data config (YAML)")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
