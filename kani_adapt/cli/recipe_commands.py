"""`kani-adapt run`, `check`, `recipes` and `demo`."""
from __future__ import annotations

from pathlib import Path

from kani_adapt.core.cli_kit import Formatter, add_overrides
from kani_adapt.core.errors import ConfigError

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DEMO = RECIPES / "demo" / "demo.yaml"


def add_recipe_commands(sub) -> None:
    p = sub.add_parser(
        "run", formatter_class=Formatter, help="run a recipe end to end (resumable)",
        description=(
            "Run the stages of a recipe in order: synthesize (demo), prepare data, codec\n"
            "check, codec fine-tuning, generator training, export, eval (base vs adapted on\n"
            "held-out speakers and the replay set; writes the recipe's row of a results table\n"
            "to WORK_DIR/results.md, and to a tracked table only on request:\n"
            "`readme=recipes/README.md`), learn (where on: a few clips taught by heart and one\n"
            "said back), samples. A stage runs again only when one of its\n"
            "own settings changed or what it reads has other content (an earlier stage that\n"
            "ran again and wrote the same bytes stops there); an interrupted stage resumes.\n"
            "A listening test in a folder a stage replaces is moved aside, never deleted.\n"
            "Why each stage ran or was skipped: WORK_DIR/stages.json (docs/reruns.md)."
        ),
    )
    p.add_argument("recipe", type=Path, metavar="RECIPE")
    add_overrides(p, "generator.trainer.max_steps=2000")
    _strict(p)
    p.set_defaults(func=run_run)

    p = sub.add_parser(
        "check", formatter_class=Formatter,
        help="check a recipe, this machine and the recordings before a run; runs nothing",
        description=(
            "Checks what `kani-adapt run` would check before its first stage, in seconds: every\n"
            "model, codec and path the recipe names exists (or will be fetched, and from where),\n"
            "every device can be used by this torch build, the replay and eval sets open with\n"
            "the columns training reads, each source's language matches its tag's, and the\n"
            "generator's tokenizer knows the characters of a sample of the transcripts.\n"
            "Prints a verdict with one line per problem (exit 2 with a problem, else 0)."
        ),
    )
    p.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe YAML")
    add_overrides(p, "generator.trainer.max_steps=2000")
    p.add_argument("--show-config", action="store_true",
                   help="also print the fully resolved recipe (defaults and wiring filled in) "
                        "and the codec each stage uses")
    _strict(p)
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
            "evaluates it against its base (meaningless numbers: the models are random),\n"
            "teaches the generator a few clips by heart and has it say one back (its distance to\n"
            "the clip's codec round trip against the base's: the `learned:` line) and writes\n"
            "sample WAVs.\n"
            "Measured run time: recipes/README.md (demo row). Everything lands in --out,\n"
            "its results row in OUT/results.md (`readme=recipes/README.md` updates the table)."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="work directory")
    add_overrides(p, "generator.trainer.max_steps=60")
    p.set_defaults(func=run_demo)


def _strict(p) -> None:
    p.add_argument("--strict", action="store_true",
                   help="a stage switched off that the recordings need (data.transcribe.enabled: "
                        "off with untranscribed or long recordings) is an error (exit 2) "
                        "instead of a summary of the hours it rejects")


def _load(recipe: Path, overrides: list[str]):
    from kani_adapt.recipes.schema import load_recipe

    if not recipe.is_file():
        raise ConfigError(f"{recipe}: no such recipe file (list them with `kani-adapt recipes`)")
    return load_recipe(recipe, overrides)


def run_run(args) -> int:
    from kani_adapt.recipes.runner import run_recipe

    recipe = _load(args.recipe, args.overrides)
    outputs = run_recipe(recipe, strict=args.strict)
    print(f"recipe {recipe.name} done; work directory {recipe.work_dir}")
    for line in closing_summary(recipe, outputs):
        print(line)
    return 0


def closing_summary(recipe, outputs: dict) -> list[str]:
    """What a run produced, the data report first (read it before trusting the training), and
    the hours a stage switched off rejected."""
    from data_tools import preflight as data_preflight

    lines = []
    report = outputs.get("prepare", {}).get("report")
    if report:
        lines.append(f"  data report (read it first): {report}")
    for stage, produced in outputs.items():
        for key, value in produced.items():
            if (stage, key) not in (("prepare", "report"), ("prepare", "lost"), ("learn", "line")):
                lines.append(f"  {stage}.{key}: {value}")
    if "eval" in outputs:
        lines.append("listening test for a panel: "
                     f"{outputs['eval'].get('listen') or listen_hint(outputs)}")
    if "learn" in outputs:
        lines.append(outputs["learn"]["line"])
    lost = outputs.get("prepare", {}).get("lost") or {}
    return lines + data_preflight.loss_lines(lost, lost.get("input_hours"))


def listen_hint(outputs: dict) -> str:
    """The listening command of an eval stage recorded before it named one."""
    from kani_adapt.recipes.evaluation import listen_command

    return listen_command(Path(outputs["eval"]["report"]).parent)


def run_check(args) -> int:
    from kani_adapt.core import preflight
    from kani_adapt.recipes.preflight import findings

    recipe = _load(args.recipe, args.overrides)
    if args.show_config:
        import yaml

        from kani_adapt.config.load import to_dict
        from kani_adapt.recipes.runner import codecs_in_effect

        print(yaml.safe_dump(to_dict(recipe), sort_keys=False), end="")
        print("# the codec each stage uses (recorded in WORK_DIR/stages.json):")
        for stage, codec in codecs_in_effect(recipe).items():
            print(f"#   {stage}: {codec}")
    found = findings(recipe, strict=args.strict)
    print(preflight.verdict(f"recipe {args.recipe}", found), end="")
    return 2 if preflight.problems(found) else 0


def run_list(args) -> int:
    from kani_adapt.recipes.schema import load_recipe, recipe_files

    paths = recipe_files(args.dir)
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
    if outputs.get("prepare", {}).get("report"):
        print(f"  data report:   {outputs['prepare']['report']}")
    if outputs.get("sample", {}).get("samples"):  # sample.texts: [] leaves the stage out
        print(f"  sample WAV:    {outputs['sample']['samples'][0]}")
    print(f"  merged model:  {outputs['export']['merged']}")
    print(f"  LoRA adapter:  {outputs['export']['adapter']}")
    print(f"  codec report:  {outputs['codec_check']['report']}")
    if "eval" in outputs:
        print(f"  eval report:   {outputs['eval']['report']} (with players: index.html beside it)")
        print(f"  listening test for a panel: {outputs['eval'].get('listen') or listen_hint(outputs)}")
    print(f"  TensorBoard:   tensorboard --logdir {args.out}")
    if "learn" in outputs:
        wavs = outputs["learn"]["wavs"]
        print(f"  learned WAVs:  {wavs['adapted']} (adapted), {Path(wavs['base']).name} (base), "
              f"{Path(wavs['roundtrip']).name} (the clip's codec round trip)")
        print(outputs["learn"]["line"])
    return 0
