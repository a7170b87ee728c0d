"""`kani-adapt plan`: how many hours a recipe needs, from pilot runs (kani_adapt/planning/)."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.core.cli_kit import Formatter, add_overrides

PREFIX = "plan."  # overrides of the plan's own settings; every other key is the recipe's


def add_plan(sub) -> None:
    p = sub.add_parser(
        "plan", formatter_class=Formatter,
        help="how many hours a recipe needs: pilot runs on nested subsets, learning curves",
        description=(
            "Prepares the recipe's data (through the recipe runner, as `kani-adapt run` would),\n"
            "draws nested subsets of its training set (hours: 1/16, 1/8, 1/4, 1/2, all; voices:\n"
            "fewer speakers at equal hours; the held-out eval speakers in none), trains the\n"
            "recipe's own generator on each (its passes over the data held constant), evaluates\n"
            "each with the recipe's eval against the same base, and fits a learning curve per\n"
            "metric with intervals over the eval speakers: predictions at 2x, 4x and 10x the\n"
            "data, the hours to reach a target, whether more voices help, and the GPU-hours.\n"
            "Writes OUT/plan.md, plan.html (with a picture per metric) and plan.json. Pilots\n"
            "done before are skipped; an interrupted one resumes. docs/planning.md says more."
        ),
    )
    p.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe YAML")
    p.add_argument("--config", type=Path, metavar="PLAN.yaml",
                   help="the plan's settings (kani_adapt/planning/config.py); plan.KEY=VALUE "
                        "overrides one")
    p.add_argument("--engine", choices=("local", "ray"),
                   help="where pilots run: local (one after another, one per GPU when there "
                        "are several) or ray (a task per pilot; plan.ray.* settings); default: "
                        "the config's, local")
    p.add_argument("--out", type=Path, help="where the plan writes (default: WORK_DIR/plan)")
    add_overrides(p, "plan.fractions=[0.125,0.25,0.5,1] generator.trainer.device=cuda")
    p.set_defaults(func=run_plan)


def split(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(the plan's overrides, without their prefix; the recipe's)."""
    ours = [o[len(PREFIX):] for o in overrides if o.startswith(PREFIX)]
    return ours, [o for o in overrides if not o.startswith(PREFIX)]


def run_plan(args) -> int:
    from kani_adapt.cli.recipe_commands import _load
    from kani_adapt.config.load import load_config
    from kani_adapt.planning.config import PlanConfig
    from kani_adapt.planning.plan import out_folder, run_plan as plan

    ours, theirs = split(args.overrides)
    if args.engine:
        ours.append(f"engine={args.engine}")
    if args.out:
        ours.append(f"out={args.out.resolve()}")
    cfg = load_config(PlanConfig, args.config, ours)
    recipe = _load(args.recipe, theirs)
    result = plan(recipe, cfg)
    out = out_folder(recipe, cfg)
    for line in result["answer"]:
        print(line.replace("**", ""))
    print(f"plan: {out / 'plan.md'} (page: {out / 'plan.html'})")
    return 0
