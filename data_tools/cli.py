"""`data-tools`: the data preparation stages, one command each, plus `prepare` for all of them.

Every command takes the data config (YAML; every key and default: data_tools/config.py and each
stage's module under data_tools/stages/).
Stages are resumable: re-running one skips finished work.
"""
from __future__ import annotations

import argparse
import sys

from kani_adapt.core.cli_kit import Parser, add_device, add_overrides, add_verbose, run_cli

DESCRIPTION = """\
Turn community recordings into KaniTTS2 training data, one resumable stage at a time:
  {order}
`data-tools prepare DATA_CONFIG` runs them all; `data-tools check DATA_CONFIG` checks the
config, the machine and the recordings first (models, devices, the tokenizer's coverage) and says what is
wrong, one line each (`--show-config` adds the resolved YAML). Every command that reads a
config also takes its keys as KEY=VALUE (e.g. `filter.min_snr_db=10`). Rejected items and their
reasons land in <work>/rejected.jsonl.
`data-tools contribute validate|package DIR` checks and packages a contributed accent dataset.
Every stage runs in this process by default; `--engine ray` spreads it over a Ray cluster (a
local one started for the run, or `--ray-address auto` / an address) with the same results.
"""
CONTRIBUTE = """\
Check a contributed accent dataset, or package it for the Hugging Face Hub.

Layout (docs/contributing-datasets.md):
  DIR/README.md                           card: YAML front matter with license, consent,
                                          language, accent, speakers (id, clips[, accent])
  DIR/audio/<split>/<speaker>/<clip>.wav  + <clip>.txt (or .lab), a UTF-8 transcript
  split: train, validation or test; a speaker stays in one split.
Card template: data_tools/templates/contribution_card.md

validate exit codes: 0 accepted, 1 rejected (reasons in the report), 2 usage error.
"""
def _config(args):
    from data_tools.config import load_config

    cfg = load_config(args.config, args.overrides)
    if getattr(args, "engine", None):
        cfg.engine = args.engine
    if getattr(args, "ray_address", None) is not None:
        cfg.ray.address = args.ray_address
    return cfg


def cmd_stage(args) -> int:
    from pathlib import Path

    from data_tools import registry
    from data_tools.runner import parse_shard, run_stage

    from data_tools import preflight as data_preflight
    from kani_adapt.core import preflight

    cfg = _config(args)
    stage = registry.get(args.command)
    if stage.device:
        if getattr(args, "device", None):
            setattr(getattr(cfg, stage.section), stage.device, args.device)
        preflight.refuse(preflight.device(f"{stage.section}.{stage.device}",
                                          getattr(getattr(cfg, stage.section), stage.device)))
    cfg = data_preflight.decided(cfg)  # transcribe.enabled: auto, from the recordings
    shard = parse_shard(args.shard) if stage.model else (0, 1)
    outcome = run_stage(stage, cfg, shard)
    if outcome.out is not None:
        print(f"dataset written to {outcome.out}")
    elif not outcome.complete:
        print(f"{stage.name}: shard {shard[0]}/{shard[1]} done; {outcome.left} items wait for "
              "the other shards")
    else:
        print(f"{stage.name}: {len(outcome.kept)} clips kept; rejections in "
              f"{Path(cfg.work) / 'rejected.jsonl'}")
    return 0


def cmd_prepare(args) -> int:
    from data_tools import prepare

    out = prepare.run(_config(args), strict=args.strict)
    print(f"dataset written to {out}; read its report first: {out / 'report.md'}")
    return 0


def cmd_check(args) -> int:
    """The verdict of the preflight (exit 2 with a problem); --show-config: the resolved YAML."""
    import dataclasses

    from data_tools import preflight as data_preflight
    from kani_adapt.core import preflight

    cfg = _config(args)
    if args.show_config:
        import yaml

        print(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False), end="")
    found = data_preflight.findings(cfg, strict=args.strict)
    print(preflight.verdict(f"data config {args.config}", found), end="")
    return 2 if preflight.problems(found) else 0


def _contribute_config(args):
    from data_tools.contribute.config import load

    flags = [f"{k}={v}" for k, v in (("min_hours", args.min_hours),
                                     ("min_speakers", args.min_speakers)) if v is not None]
    return load(args.config, [*flags, *args.overrides])


def cmd_validate(args) -> int:
    import json
    from pathlib import Path

    from data_tools.contribute import report
    from data_tools.contribute.validate import validate

    result = validate(Path(args.dir), _contribute_config(args), progress=not args.quiet)
    print(report.markdown(result), end="")
    if args.json:
        from kani_adapt.core.atomic import write_text

        write_text(args.json, json.dumps(report.to_json(result), ensure_ascii=False, indent=1))
    return 0 if result.accepted else 1


def cmd_package(args) -> int:
    from pathlib import Path

    from data_tools.contribute import package, report
    from data_tools.contribute.validate import validate

    result = validate(Path(args.dir), _contribute_config(args), progress=not args.quiet)
    if not result.accepted:
        print(report.markdown(result), end="")
        print(f"not packaged: {args.dir} fails validation ({len(result.errors())} errors above)",
              file=sys.stderr)
        return 1
    out = package.write(result, Path(args.dir), Path(args.out), overwrite=args.overwrite)
    print(f"Hugging Face dataset written to {out}; upload it with "
          f"`hf upload <org>/<name> {out} --repo-type dataset`")
    return 0


def _add_contribute(sub) -> None:
    p = sub.add_parser("contribute", help="validate or package a contributed accent dataset",
                       description=CONTRIBUTE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=lambda args: p.print_help() or 2)  # no action: show this help
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    for name, help_text, func in (
            ("validate", "check the dataset and print a Markdown report (exit 0/1/2)",
             cmd_validate),
            ("package", "validate, then write a Hugging Face dataset folder (parquet + card)",
             cmd_package)):
        a = actions.add_parser(name, help=help_text, description=CONTRIBUTE,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        a.add_argument("dir", help="the contributed dataset folder")
        a.add_argument("--config", help="YAML of thresholds (data_tools/contribute/config.py)")
        a.add_argument("--min-hours", type=float, help="hours needed per accent tag (default 1)")
        a.add_argument("--min-speakers", type=int, help="speakers needed per accent tag "
                       "(default 3)")
        a.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "validate":
            a.add_argument("--json", help="also write the report as JSON to this file")
        else:
            a.add_argument("--out", required=True, help="dataset folder to create")
            a.add_argument("--overwrite", action="store_true",
                           help="replace OUT when it already exists")
        add_overrides(a, "max_speaker_share=0.6")
        a.set_defaults(func=func)


def _add_stages(sub) -> None:
    from data_tools import registry

    for stage in registry.stages():
        p = sub.add_parser(stage.name, help=stage.help, description=stage.help)
        _config_args(p)
        _engine_args(p)
        if stage.model:
            p.add_argument("--shard", default="0/1",
                           help="I/N: handle only shard I of N (independent processes or GPUs)")
            if stage.device:
                add_device(p, "the model", default=None,
                           note=f"sets {stage.section}.{stage.device}; default: the config's")
        p.set_defaults(func=cmd_stage)


def _engine_args(p) -> None:
    p.add_argument("--engine", choices=("local", "ray"), default=None,
                   help="where the work runs: local (this process) or ray (tasks and model "
                        "actor pools on a Ray cluster; same results); default: the config's "
                        "engine (local)")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="with --engine ray: auto (the cluster this machine joined with `ray "
                        "start`) or a cluster address (host:6379, ray://host:10001); default "
                        "(ray.address, empty): a local Ray started for the run and stopped "
                        "after it. The work folder must be on a file system every node sees")


def _strict(p) -> None:
    p.add_argument("--strict", action="store_true",
                   help="a stage switched off that the recordings need (transcribe.enabled: off "
                        "with untranscribed or long recordings) is an error (exit 2) instead of "
                        "a summary of the hours it rejects")


def _config_args(p) -> None:
    p.add_argument("config", help="data config (YAML)")
    add_overrides(p, "embed.batch_size=16")


def build_parser() -> Parser:
    from data_tools import registry

    order = " -> ".join(registry.names())
    parser = Parser(prog="data-tools", description=DESCRIPTION.format(order=order),
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    add_verbose(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    _add_stages(sub)
    p = sub.add_parser("prepare", help=f"run every stage in order ({order})")
    _config_args(p)
    _engine_args(p)
    _strict(p)
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("check", help="check the config, the machine and the recordings before a "
                                     "run: a verdict with one line per problem (exit 2 with one)")
    _config_args(p)
    _strict(p)
    p.add_argument("--show-config", action="store_true",
                   help="also print the fully resolved config (YAML, defaults filled in)")
    p.set_defaults(func=cmd_check)
    _add_contribute(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
