"""`kani-adapt run`, `check`, `recipes` and `demo`."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.cli_kit import Formatter
from kani_adapt.errors import ConfigError

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DEMO = RECIPES / "demo" / "demo.yaml"


def add_recipe_commands(sub) -> None:
    p = sub.add_parser(
        "run", formatter_class=Formatter, help="run a recipe end to end (resumable)",
        description=(
            "Run the stages of a recipe in order: synthesize (demo), prepare data, codec\n"
            "check, codec fine-tuning, generator training, export, eval (base vs adapted on\n"
            "held-out speakers and the replay set; fills the recipe's row of the results table\n"
            "in recipes/README.md, or `readme=FILE`), samples. Stages done\n"
            "before with the same inputs and config are skipped; an interrupted stage resumes;\n"
            "a stage whose config changed is redone. Progress: WORK_DIR/stages.json."
        ),
    )
    p.add_argument("recipe", type=Path, metavar="RECIPE")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="dotted overrides, e.g. generator.trainer.max_steps=2000")
    p.set_defaults(func=run_run)

    p = sub.add_parser("check", formatter_class=Formatter,
                       help="validate a recipe and print it fully resolved (defaults and "
                            "wiring filled in); runs nothing")
    p.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe YAML")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="dotted overrides, e.g. generator.trainer.max_steps=2000")
    p.set_defaults(func=run_check)

    p = sub.add_parser("recipes", formatter_class=Formatter, help="list the bundled recipes")
    p.add_argument("--dir", type=Path, default=RECIPES, help="folder to search")
    p.set_defaults(func=run_list)

    p = sub.add_parser(
        "demo", formatter_class=Formatter,
        help="the demo recipe: whole pipeline on CPU, tiny models, no downloads",
        description=(
            "Runs recipes/demo/demo.yaml: synthesises German and Scottish-English speech with\n"
            "espeak-ng, prepares it, checks and fine-tunes a tiny codec, trains a LoRA on a\n"
            "tiny generator (scored at each validation), exports it (adapter and merged),\n"
            "evaluates it against its base (meaningless numbers: the models are random) and\n"
            "writes a sample WAV.\n"
            "Measured run time: recipes/README.md (demo row). Everything lands in --out."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="work directory")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=run_demo)


def _load(recipe: Path, overrides: list[str]):
    from kani_adapt.recipes.schema import load_recipe

    if not recipe.is_file():
        raise ConfigError(f"{recipe}: no such recipe file (list them with `kani-adapt recipes`)")
    return load_recipe(recipe, overrides)


def run_run(args) -> int:
    from kani_adapt.recipes.runner import run_recipe

    recipe = _load(args.recipe, args.overrides)
    outputs = run_recipe(recipe)
    print(f"recipe {recipe.name} done; work directory {recipe.work_dir}")
    for stage, produced in outputs.items():
        for key, value in produced.items():
            print(f"  {stage}.{key}: {value}")
    return 0


def run_check(args) -> int:
    import yaml

    from kani_adapt.config import to_dict
    from kani_adapt.recipes.runner import codecs_in_effect

    recipe = _load(args.recipe, args.overrides)
    print(yaml.safe_dump(to_dict(recipe), sort_keys=False), end="")
    print("# the codec each stage uses (recorded in WORK_DIR/stages.json):")
    for stage, codec in codecs_in_effect(recipe).items():
        print(f"#   {stage}: {codec}")
    from kani_adapt.recipes import fertility_gate

    for line in fertility_gate.problems(recipe):  # Step 0: what the LoRA run would stop on
        print(f"# problem: {line}")
    return 0


def run_list(args) -> int:
    from kani_adapt.recipes.schema import load_recipe

    paths = sorted(Path(args.dir).rglob("*.yaml"))
    if not paths:
        raise ConfigError(f"{args.dir}: no recipes found")
    for path in paths:
        recipe = load_recipe(path)
        print(f"{str(path.relative_to(args.dir)):40s} {recipe.description}")
    return 0


def run_demo(args) -> int:
    from kani_adapt.recipes.runner import run_recipe

    recipe = _load(DEMO, [f"work_dir={args.out.resolve()}", *args.overrides])
    outputs = run_recipe(recipe)
    print(f"demo done in {args.out}")
    print(f"  sample WAV:    {outputs['sample']['samples'][0]}")
    print(f"  merged model:  {outputs['export']['merged']}")
    print(f"  LoRA adapter:  {outputs['export']['adapter']}")
    print(f"  codec report:  {outputs['codec_check']['report']}")
    if "eval" in outputs:
        print(f"  eval report:   {outputs['eval']['report']}")
    print(f"  TensorBoard:   tensorboard --logdir {args.out}")
    return 0
