"""`kani-adapt prefer`: preference training in rounds (sample, score, pairs, train, eval)."""
from __future__ import annotations

import sys
from pathlib import Path

from kani_adapt.core.cli_kit import Formatter, add_overrides


def add_prefer(sub) -> None:
    p = sub.add_parser(
        "prefer", formatter_class=Formatter,
        help="preference training (DPO) in rounds, against derailment on short prompts",
        description=(
            "Rounds of: sample rollouts of short-focused texts and regression anchors from the\n"
            "policy, score them (the recogniser with the tag's language forced, WER through the\n"
            "eval's normaliser, a duration model fitted on the dataset, two-sided), build pairs\n"
            "(gates, margin, pairs per group), train a LoRA with objective dpo, export it merged\n"
            "and evaluate by prompt kind. Each stage is skipped when its output exists, so a\n"
            "rerun resumes. RUN_DIR/summary.json names the round to ship. docs/preference.md."
        ),
    )
    p.add_argument("config", type=Path, metavar="CONFIG", help="prefer config YAML")
    add_overrides(p, "rounds=2")
    p.add_argument("--check", action="store_true",
                   help="check the config, the policy, dataset, voices and prompts; run nothing")
    p.set_defaults(func=run_prefer)


def run_prefer(args) -> int:
    from kani_adapt.config.load import load_config
    from kani_adapt.preference import preflight
    from kani_adapt.preference.config import PreferConfig

    cfg = load_config(PreferConfig, args.config, args.overrides)
    found = preflight.problems(cfg)
    if found:  # one line each
        from kani_adapt.core import console

        for problem in found:
            print(f"error: {console.shown(problem)}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: ready")
        return 0
    from kani_adapt.preference import rounds

    summary = rounds.run_configured(cfg)
    for row in summary["rounds"]:
        made = summary["pairs"].get(f"round{row['round']}")
        print(f"round {row['round']}: runaway {row['runaway']:.1%}, too short {row['short']:.1%}, "
              f"any failure {row['any']:.1%}" + (f", regressed on {', '.join(row['regressed'])}"
                                                 if row["regressed"] else "")
              + (f"; trained on {_pairs_line(made)}" if made else ""))
    print(f"ship round {summary['ship']} ({Path(cfg.run_dir) / 'summary.json'})")
    return 0


def _pairs_line(counts: dict) -> str:
    human = counts.get("human")
    line = (f"{counts['pairs']} pairs from {counts['groups']} groups "
            f"({counts.get('no_passing', 0)} dropped: no rollout passed the gates)")
    if human:
        line += (f", {human['pairs']} of them the listeners' ({human['ties']} ties dropped, "
                 f"{len(human['excluded_listeners'])} listener(s) left out)")
    return line
