"""The recipe's eval stage: the base model against the adapted one on speakers training never
saw (and on the base-language replay set, the forgetting line), then its row of the results table.

A base given as a size (``tiny``, ``350m``: random weights) is rebuilt exactly as training built
it, so the comparison is with the weights the adaptation started from.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from kani_adapt.core import atomic
from kani_adapt.core.errors import ConfigError
from kani_adapt.recipes.schema import Recipe

RANDOM_NOTE = ("The models here are tiny and random (`{init}`): these numbers are meaningless and "
               "only show that the eval stage runs and connects.")


def random_init(recipe: Recipe) -> bool:
    from kani_adapt.models.generator import sizes

    return (recipe.eval.base or recipe.generator.model.init) in sizes.SIZES


def base_checkpoint(recipe: Recipe, out: Path) -> str:
    """The checkpoint the adaptation started from, saved under ``out`` when it is a random size."""
    base = recipe.eval.base or recipe.generator.model.init
    cfg = dataclasses.replace(recipe.generator, model=dataclasses.replace(
        recipe.generator.model, init=base))
    return starting_point(cfg, out / "base")


def starting_point(cfg, folder: Path) -> str:
    """The checkpoint a training run with ``cfg`` (a TrainConfig) starts from: its
    ``model.init``, or, for a random size, the weights training builds, saved in ``folder``."""
    from kani_adapt.models.generator import checkpoint, sizes

    if cfg.model.init not in sizes.SIZES:
        return cfg.model.init
    if not (folder / checkpoint.WEIGHTS).is_file():
        from kani_adapt.training.run import build_model

        checkpoint.save_checkpoint(build_model(cfg), folder, dtype="fp32")
    return str(folder)


def run(recipe: Recipe, cfg, merged: str) -> dict:
    """``cfg``: the recipe's eval section with the codec in effect."""
    from kani_adapt.eval.dataset_set import held_out_speakers, load_dataset_items
    from kani_adapt.eval.evaluate import run_eval

    if not held_out_speakers(cfg.dataset):
        raise ConfigError(f"{cfg.dataset.from_run}/data_stats.json: training held out no speakers, so "
                          "nothing is left to evaluate on; set generator.data.val_speakers >= 1, "
                          "name them with eval.dataset.speakers=[...], or set eval.enabled: false")
    out = Path(recipe.work_dir) / "eval"
    spec = recipe.generator.data.train
    items = load_dataset_items(spec, cfg.dataset)
    base = base_checkpoint(recipe, out)
    result = run_eval(merged, items, cfg, out, compare=[base], eval_set=spec,
                      known_tags=data_stats(recipe).get("tags", []))
    if random_init(recipe):
        note = RANDOM_NOTE.format(init=recipe.eval.base or recipe.generator.model.init)
        md = out / "eval.md"
        atomic.write_text(md, md.read_text(encoding="utf-8").replace(
            "# Evaluation\n", f"# Evaluation\n\n**{note}**\n", 1))
        from kani_adapt.eval.page import write_index

        write_index(out)  # its summary is eval.md's
    return {"report": str(out / "eval.md"), "json": str(out / "eval.json"),
            "verdict": result["verdicts"][0], "listen": listen_command(out)}


def listen_command(eval_dir: Path) -> str:
    """The command that serves this eval to a panel of listeners."""
    return f"kani-adapt listen {eval_dir} --listeners 6"


def data_stats(recipe: Recipe) -> dict:
    path = Path(recipe.generator.run_dir) / "data_stats.json"
    return json.loads(path.read_text()) if path.is_file() else {}
