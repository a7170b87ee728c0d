"""``kani-adapt plan``: the recipe's data (prepared through the recipe runner), nested subsets,
a pilot of the recipe's own training on each, the base evaluated once, then the curves, the
cost and the report (OUT/plan.json, plan.md, plan.html).

The rule for steps: a pilot makes as many passes over its subset as the recipe's own run makes
over the whole training set (its ``max_steps``, times its GPUs when it trains on several: a
pilot trains on one), so its steps are the recipe's in proportion to its hours, at least
``plan.min_steps``; warmup shrinks in the same proportion. Everything else is the recipe's:
mode, objective, model, LoRA, optimiser, batching, replay, seed, export dtype, eval. A pilot
holds out no speakers of its own (the held-out speakers are in no subset) and generates no
validation samples.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from kani_adapt import dataset
from kani_adapt.planning import analysis, dispatch, subsets
from kani_adapt.planning.config import FOLDER, PlanConfig
from kani_adapt.planning.pilots import Pilot


def out_folder(recipe, cfg: PlanConfig) -> Path:
    return Path(cfg.out) if cfg.out else Path(recipe.work_dir) / FOLDER


def run_plan(recipe, cfg: PlanConfig, say: Callable[[str], None] = print) -> dict:
    """Prepare, draw, run the pilots and the base, analyse and write the report; plan.json's
    content."""
    from kani_adapt.planning import report
    from kani_adapt.recipes.runner import DATA_STAGES, run_recipe

    begun = time.time()
    run_recipe(recipe, log=say, leading=DATA_STAGES)
    source = recipe.generator.data.train
    table = dataset.read(source)
    ts = subsets.training_set(table, recipe)
    drawn = subsets.draw(ts, cfg)  # a dataset too small stops here, before any pilot
    out = out_folder(recipe, cfg)
    say(f"plan: {len(drawn)} pilots on {ts.hours(ts.rows) * 60:.1f} min of training speech "
        f"({len(ts.voices(ts.rows))} voices); held out for eval: {', '.join(ts.held_out)}")
    pilots, notes = build(recipe, cfg, table, ts, drawn, out)
    records = dispatch.run_all(pilots, cfg.engine, recipe.generator.trainer.device, cfg.gpus,
                               cfg.ray, say)
    plan = assemble(recipe, cfg, table, ts, drawn, pilots, records, notes)
    plan["seconds"] = round(time.time() - begun, 1)
    report.write(out, plan)
    return plan


def codecs(recipe) -> tuple[str, str, list[str]]:
    """The codecs the pilots decode with (training's samples, the eval), and a note when the
    recipe fine-tunes its codec but has not yet: then the recipe's own codec decodes."""
    from kani_adapt.recipes.runner import codecs_in_effect
    from kani_adapt.recipes.stages import finetuned_codec

    chosen = codecs_in_effect(recipe)
    if recipe.codec_finetune is None or finetuned_codec(recipe).is_file():
        return chosen["train"], chosen["eval"], []
    note = ("the recipe fine-tunes its codec, which no run has done yet: the pilots decode with "
            "the recipe's codec (every pilot and the base alike)")
    return recipe.generator.codec or recipe.codec, recipe.eval.codec or recipe.codec, [note]


def build(recipe, cfg: PlanConfig, table, ts, drawn, out: Path) -> tuple[list[Pilot], list[str]]:
    """The base (evaluated, not trained) and a pilot per subset, each subset written."""
    from kani_adapt.recipes.evaluation import base_checkpoint

    train_codec, eval_codec, notes = codecs(recipe)
    source = recipe.generator.data.train
    evaluation = dataclasses.replace(recipe.eval, codec=eval_codec, dataset=dataclasses.replace(
        recipe.eval.dataset, speakers=list(ts.held_out), from_run=""))
    gen = dataclasses.replace(recipe.generator, codec=train_codec)
    common = dict(source=source, held_out=list(ts.held_out), heldout_rows=cfg.heldout_rows,
                  eval=evaluation, export_dtype=recipe.export.dtype)
    full = ts.hours(ts.rows)
    base = Pilot("base", "base", 0.0, 0.0, 0, 0, str(out / "base"), train=gen,
                 checkpoint=base_checkpoint(recipe, out / "base"), **common)
    pilots = [base]
    for s in drawn:
        folder = out / "pilots" / s.name
        hf = subsets.write(table, s, source, folder / "data")
        pilots.append(Pilot(s.name, s.axis, s.fraction, s.hours, s.voices, len(s.rows),
                            str(folder), train=training(gen, cfg, s.hours / full, hf, folder),
                            **common))
    return pilots, notes


def training(gen, cfg: PlanConfig, share: float, hf: Path, folder: Path):
    """The recipe's training config on a subset holding ``share`` of the training hours."""
    t, o = gen.trainer, gen.optim
    world = t.gpus_per_node * t.num_nodes
    steps = max(cfg.min_steps, round(t.max_steps * world * share))
    return dataclasses.replace(
        gen, run_dir=str(folder / "run"),
        data=dataclasses.replace(gen.data, train=str(hf), val_speakers=0),
        trainer=dataclasses.replace(t, max_steps=steps, val_every=steps,
                                    ckpt_every=min(t.ckpt_every, steps),
                                    log_every=min(t.log_every, steps), sample_prompts=0,
                                    gpus_per_node=1, num_nodes=1,
                                    strategy="auto" if world > 1 else t.strategy),
        optim=dataclasses.replace(o, warmup_steps=min(o.warmup_steps,
                                                      round(o.warmup_steps * world * share))),
        eval=dataclasses.replace(gen.eval, prompts=0, base_prompts=0, stop_on_forgetting="",
                                 monitor=""))


def assemble(recipe, cfg: PlanConfig, table, ts, drawn, pilots, records, notes) -> dict:
    """plan.json: the subsets, the pilots, a curve per metric, the cost."""
    from kani_adapt.planning import costs

    by_name = {p.name: p for p in pilots}
    gen = recipe.generator
    plan = {
        "recipe": recipe.name, "dataset": recipe.generator.data.train, "seed": cfg.seed,
        "held_out": list(ts.held_out), "notes": list(notes) + few_speakers(ts.held_out),
        "training_hours": ts.hours(ts.rows), "training_voices": len(ts.voices(ts.rows)),
        "rule": {"recipe_steps": gen.trainer.max_steps, "min_steps": cfg.min_steps,
                 "gpus": gen.trainer.gpus_per_node * gen.trainer.num_nodes,
                 "resamples": cfg.resamples},
        "subsets": [{"name": s.name, "axis": s.axis, "fraction": s.fraction,
                     **subsets.diversity(table, ts, s.rows)} for s in drawn],
        "pilots": [_pilot_row(by_name[s.name], records.get(s.name, {})) for s in drawn],
        "base": _pilot_row(by_name["base"], records.get("base", {})),
    }
    plan["metrics"] = measure(cfg, ts, drawn, records)
    plan["unknown_targets"] = sorted(set(cfg.targets) - set(plan["metrics"]))
    plan["cost"] = costs.estimate(plan)
    return plan


def few_speakers(held_out: list[str]) -> list[str]:
    """A note when the eval speakers are too few for intervals drawn over them to mean much."""
    if len(held_out) >= 3:
        return []
    return [f"only {len(held_out)} eval speaker(s): the intervals, drawn over so few speakers, "
            "are rough; hold out 3 or more (generator.data.val_speakers or "
            "eval.dataset.speakers)"]


def _pilot_row(pilot: Pilot, record: dict) -> dict:
    keep = ("status", "reason", "steps", "train_seconds", "eval_seconds", "resumed", "machine",
            "seconds")
    return {"name": pilot.name, "axis": pilot.axis, "fraction": pilot.fraction,
            "hours": pilot.hours, "voices": pilot.voices, "clips": pilot.clips,
            "folder": pilot.folder, **{k: record[k] for k in keep if k in record}}


def measure(cfg: PlanConfig, ts, drawn, records: dict) -> dict:
    """metric -> its analysis (``analysis.analyse``), for every metric a done pilot measured."""
    from kani_adapt.planning import curves, metrics

    speakers = list(ts.held_out)
    draws = curves.speaker_draws(speakers, cfg.resamples, cfg.seed)
    done = {n: r for n, r in records.items() if r.get("status") == "done"}
    out = {}
    for metric, higher in metrics.directions().items():
        def measured(name: str, source: str = "sums", hours=0.0, voices=0):
            sums = done.get(name, {}).get(source, {}).get(metric)
            if not sums:
                return None
            point, values = curves.figures(sums, speakers, draws)
            return analysis.Measured(name, hours, voices, point, values)

        hours = [m for s in drawn if s.axis == subsets.HOURS
                 if (m := measured(s.name, hours=s.hours, voices=s.voices))]
        if not hours:
            continue
        anchor = next((m for m in hours if m.name == f"{subsets.HOURS}-{cfg.speaker_fraction:g}"), None)
        voices = [m for s in drawn if s.axis == subsets.VOICES
                  if (m := measured(s.name, hours=s.hours, voices=s.voices))]
        base_m = measured("base")
        recordings = measured("base", "recordings")
        target = _target(metric, cfg, base_m, recordings)
        out[metric] = analysis.analyse(analysis.Inputs(
            metric, higher, hours, voices + ([anchor] if anchor and voices else []), base_m,
            recordings, target))
    return out


def _target(metric: str, cfg: PlanConfig, base, recordings) -> tuple[float, str] | None:
    if metric in cfg.targets:
        return float(cfg.targets[metric]), f"plan.targets.{metric}"
    return analysis.default_target(metric, base.point if base else None,
                                   recordings.point if recordings else None)
