"""`kani-adapt run`: the stages of a recipe in order, skipping the ones already done with the
same inputs and config, resuming an interrupted one, and redoing those whose config changed.

work_dir/stages.json records, per stage, a hash of its config chained with the hashes of the
stages before it, its status (started/done), its outputs, its wall time and, for a stage that
encodes or decodes audio, the codec it used (:func:`codecs_in_effect`, decided here once).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Callable, Collection

from data_tools.config import results_part
from kani_adapt.core.atomic import write_text
from kani_adapt.core.errors import ConfigError
from kani_adapt.recipes import stages
from kani_adapt.recipes.schema import Recipe, embedder_keys, made_by_run

STATE = "stages.json"
# The stages that make a recipe's training data (what `kani-adapt plan` runs before its pilots).
DATA_STAGES = ("synthesize", "speaker_model", "prepare")


@dataclasses.dataclass
class Stage:
    name: str
    run: Callable[[], dict]
    config: object  # what the stage's result depends on (hashed)
    outputs: list[Path]  # removed before a re-run with another config
    codec: str | None = None  # the codec it encodes or decodes with (recorded in stages.json)


def codecs_in_effect(recipe: Recipe) -> dict[str, str]:
    """The codec of every stage that uses one: the recipe's ``codec`` tokenizes the data, is
    checked and is what fine-tuning starts from; everything that decodes the generator's speech
    (the training samples and scored speech, eval, samples) uses the fine-tuned codec when the
    recipe trains one, else the recipe's. A stage's own codec key, where the recipe sets one,
    wins (data.tokenize.codec, codec_finetune.codec, generator.codec, eval.codec)."""
    decoded, out = recipe.codec, {}
    if recipe.data is not None:
        out["prepare"] = recipe.data.tokenize.codec
    out["codec_check"] = recipe.codec
    if recipe.codec_finetune is not None:
        out["codec_finetune"] = recipe.codec_finetune.codec
        decoded = str(stages.finetuned_codec(recipe))
    return {**out, "train": recipe.generator.codec or decoded, "eval": recipe.eval.codec or decoded,
            "sample": decoded}


def plan(recipe: Recipe, done: dict, strict: bool = False) -> list[Stage]:
    """The stages this recipe needs, in order (``done`` holds outputs of earlier stages), each
    with the codec it uses."""
    work, codec = Path(recipe.work_dir), codecs_in_effect(recipe)
    generator = dataclasses.replace(recipe.generator, codec=codec["train"])
    evaluation = dataclasses.replace(recipe.eval, codec=codec["eval"])
    out: list[Stage] = []
    if recipe.synth is not None:
        out.append(Stage("synthesize", lambda: stages.synthesize(recipe), recipe.synth, []))
    if builds_embedder(recipe):
        out.append(Stage("speaker_model", lambda: stages.speaker_model(recipe), "tiny", []))
    if recipe.data is not None:
        out.append(Stage("prepare", lambda: stages.prepare(recipe, strict), results_part(recipe.data),
                         [], codec["prepare"]))
    if recipe.codec_check.enabled:
        out.append(Stage("codec_check", lambda: stages.codec_check(recipe, codec["codec_check"]),
                         (codec["codec_check"], recipe.codec_check), [work / "codec_check"],
                         codec["codec_check"]))
    if recipe.codec_finetune is not None:
        out.append(Stage("codec_finetune", lambda: stages.codec_finetune(recipe),
                         recipe.codec_finetune,
                         [Path(recipe.codec_finetune.run_dir), work / "codec"], codec["codec_finetune"]))
    out.append(Stage("train", lambda: stages.train(generator), generator,
                     [Path(generator.run_dir)], codec["train"]))
    out.append(Stage("export", lambda: stages.export(recipe), recipe.export, [work / "export"]))
    if recipe.eval.enabled:
        # Before `sample`, so that changing the samples does not redo the eval.
        out.append(Stage("eval", lambda: evaluate(recipe, evaluation, done), evaluation,
                         [work / "eval"], codec["eval"]))
    if recipe.sample.texts:
        def sample():
            return stages.sample(recipe, codec["sample"], _merged(done, "the sample stage"))
        out.append(Stage("sample", sample, (recipe.sample, codec["sample"]), [work / "samples"],
                         codec["sample"]))
    return out


def builds_embedder(recipe: Recipe) -> bool:
    """Whether a stage that runs loads the tiny speaker embedder the run builds first."""
    used = embedder_keys(recipe)
    if not recipe.eval.enabled:
        used.pop("eval.scorers.speaker_embedder", None)
    return any(made_by_run(recipe, ref) for ref in used.values())


def _merged(done: dict, stage: str, other: str = "") -> str:
    merged = done.get("export", {}).get("merged")
    if merged is None:
        raise ConfigError(f"{stage} needs export.merged: true{other}")
    return merged


def evaluate(recipe: Recipe, settings, done: dict) -> dict:
    """The eval stage (``settings``: the recipe's, with the codec in effect), then the recipe's
    row of the results table from its eval.json."""
    from kani_adapt.recipes import evaluation, results

    merged = _merged(done, "the eval stage", " (or eval.enabled: false)")
    start = time.time()
    produced = stages.evaluate(recipe, settings, merged)
    steps = f"{done.get('train', {}).get('steps', '?')} generator"
    if recipe.codec_finetune is not None:
        steps += f", {recipe.codec_finetune.max_steps} codec"
    note = "Tiny random models: meaningless numbers." if evaluation.random_init(recipe) else ""
    result = json.loads(Path(produced["json"]).read_text())
    # Wall time of the whole recipe: the stages recorded so far plus this one.
    seconds = sum(s.get("seconds", 0) for s in _read_state(Path(recipe.work_dir)).values()
                  if s.get("status") == "done") + time.time() - start
    line = results.row(recipe.name, result, evaluation.data_stats(recipe), steps, seconds, note)
    own = results.run_table(Path(recipe.work_dir))
    results.write_row(own, recipe.name, line)
    produced["results"] = str(own)
    if recipe.readme:  # a tracked table, only on request
        results.write_row(Path(recipe.readme), recipe.name, line)
        produced["readme"] = recipe.readme
    return produced


def run_recipe(recipe: Recipe, log: Callable[[str], None] = print, strict: bool = False,
               leading: Collection[str] | None = None) -> dict:
    """Every stage of ``recipe`` after the preflight (``kani_adapt/recipes/preflight.py``:
    one line per problem, exit 2, before any work); with ``leading``, only the stages at the
    start of the plan named there (the first other stage ends the run), recorded as a whole
    run records them, so a later run skips them."""
    from kani_adapt.core import preflight
    from kani_adapt.recipes.preflight import findings

    preflight.refuse(findings(recipe, strict))
    work = Path(recipe.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    state = _read_state(work)
    outputs: dict[str, dict] = {}
    chain = ""
    for stage in plan(recipe, outputs, strict):
        if leading is not None and stage.name not in leading:
            break
        chain = _hash(stage.config, chain)
        previous = state.get(stage.name, {})
        if previous.get("hash") == chain and previous.get("status") == "done":
            log(f"[{stage.name}] done before with the same config: skipped")
            outputs[stage.name] = previous["outputs"]
            continue
        if previous.get("hash") not in (None, chain):
            log(f"[{stage.name}] config changed since the last run: starting it over")
            _clean(stage, work)
        elif previous.get("status") == "started":
            log(f"[{stage.name}] resuming an interrupted run")
        else:
            log(f"[{stage.name}] running")
        codec = {"codec": stage.codec} if stage.codec else {}
        state[stage.name] = {"hash": chain, "status": "started", **codec}
        _write_state(work, state)
        start = time.time()
        outputs[stage.name] = stage.run()
        state[stage.name] = {"hash": chain, "status": "done", "outputs": outputs[stage.name],
                             "seconds": round(time.time() - start, 1), **codec}
        _write_state(work, state)
    return outputs


def _hash(config, previous: str) -> str:
    data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    if isinstance(data, tuple):
        data = [dataclasses.asdict(d) if dataclasses.is_dataclass(d) else d for d in data]
    text = json.dumps(data, sort_keys=True, default=str) + previous
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _clean(stage: Stage, work: Path) -> None:
    for path in stage.outputs:
        if not path.exists():
            continue
        if work.resolve() not in path.resolve().parents:
            raise ConfigError(f"stage {stage.name}: its config changed and {path} holds an older "
                              "run outside the recipe's work_dir; move it away or point the "
                              "recipe elsewhere")
        shutil.rmtree(path)


def _read_state(work: Path) -> dict:
    path = work / STATE
    return json.loads(path.read_text()) if path.exists() else {}


def _write_state(work: Path, state: dict) -> None:
    write_text(work / STATE, json.dumps(state, indent=2) + "\n")
