"""`kani-adapt run`: the stages of a recipe in order, each run again only when something it
depends on changed, resuming an interrupted one.

A stage depends on its own settings (every key of its sections, as the recipe spells it) and on
the content of the files it reads: the local paths its settings name, and what earlier stages
wrote for it (:mod:`kani_adapt.recipes.reruns` decides, :mod:`kani_adapt.recipes.contents`
reads). An earlier stage that ran again and wrote the same bytes so stops the cascade there.

work_dir/stages.json records, per stage, its status (started/done), why it ran or was skipped,
its settings, the digests of what it read and of what it produced for later stages (``output``:
first, identical or changed), what it returned, its wall time and, for a stage that encodes or
decodes audio, the codec it used (:func:`codecs_in_effect`, decided here once). Before a stage
runs again its earlier outputs are removed; a folder holding what people did (a listening test's
ratings) is moved aside instead (:mod:`kani_adapt.eval.kept`), and the record lists where.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Callable, Collection

from data_tools.config import results_part
from kani_adapt.core.atomic import write_text
from kani_adapt.core.errors import ConfigError
from kani_adapt.dataset import DatasetLayout
from kani_adapt.recipes import stages
from kani_adapt.recipes.contents import Digests, Read
from kani_adapt.recipes.reruns import decide, flatten, legacy_hash, local_paths, output_verdict
from kani_adapt.recipes.schema import Recipe, builds_embedder, tiny_embedder
from kani_adapt.text.frontend import FILE as FRONTEND

STATE = "stages.json"
RUN_LOGS = ("tb", "csv", "metrics.jsonl", "summary.json")  # a training run's logs: not what it made
# The stages that make a recipe's training data (what `kani-adapt plan` runs before its pilots).
DATA_STAGES = ("synthesize", "speaker_model", "prepare")


@dataclasses.dataclass
class Stage:
    name: str
    run: Callable[[], dict]
    config: object  # what an earlier kani-adapt hashed (stages.json without settings)
    outputs: list[Path]  # removed (or set aside) before it runs again
    codec: str | None = None  # the codec it encodes or decodes with (recorded in stages.json)
    settings: dict = dataclasses.field(default_factory=dict)  # its sections, by the recipe's key
    reads: list[Read] = dataclasses.field(default_factory=list)  # besides the paths settings name
    products: list[Read] = dataclasses.field(default_factory=list)  # what later stages read of it
    writes: list[Path] = dataclasses.field(default_factory=list)  # besides outputs: never inputs
    not_read: tuple[str, ...] = ()  # keys naming a folder it reads a part of (that part in reads)


def codecs_in_effect(recipe: Recipe) -> dict[str, str]:
    """The codec of every stage that uses one: the recipe's ``codec`` tokenizes the data, is
    checked and is what fine-tuning starts from; everything that decodes the generator's speech
    (the training samples and scored speech, eval, samples) uses the fine-tuned codec when the
    recipe trains one, else the recipe's. A stage's own codec key, where the recipe sets one,
    wins (data.tokenize.codec, codec_finetune.codec, generator.codec, eval.codec,
    prefer.codec). The learn and prefer stages, where on, decode as the samples do."""
    decoded, out = recipe.codec, {}
    if recipe.data is not None:
        out["prepare"] = recipe.data.tokenize.codec
    out["codec_check"] = recipe.codec
    if recipe.codec_finetune is not None:
        out["codec_finetune"] = recipe.codec_finetune.codec
        decoded = str(stages.finetuned_codec(recipe))
    if recipe.learn.enabled:
        out["learn"] = decoded
    if recipe.prefer.enabled:
        out["prefer"] = recipe.prefer.codec or decoded
    return {**out, "train": recipe.generator.codec or decoded, "eval": recipe.eval.codec or decoded,
            "sample": decoded}


def plan(recipe: Recipe, done: dict, strict: bool = False) -> list[Stage]:
    """The stages this recipe needs, in order (``done`` holds outputs of earlier stages), each
    with the codec it uses, its settings and what it reads and writes."""
    work, codec = Path(recipe.work_dir), codecs_in_effect(recipe)
    generator = dataclasses.replace(recipe.generator, codec=codec["train"])
    evaluation = dataclasses.replace(recipe.eval, codec=codec["eval"])
    data = DatasetLayout.of_table(recipe.generator.data.train)
    dataset = [Read(data.root / FRONTEND)]  # read beside its hf folder (named in the settings)
    run_dir, merged = Path(generator.run_dir), Read(work / "export" / "merged")
    out: list[Stage] = []
    if recipe.synth is not None:
        recordings = work / recipe.synth.out
        out.append(Stage("synthesize", lambda: stages.synthesize(recipe), recipe.synth, [],
                         settings={"synth": recipe.synth}, products=[Read(recordings)],
                         writes=[recordings]))
    if builds_embedder(recipe):
        folder = tiny_embedder(recipe)
        out.append(Stage("speaker_model", lambda: stages.speaker_model(recipe), "tiny", [],
                         settings={"speaker_embedder": "tiny"}, products=[Read(folder)],
                         writes=[folder]))
    if recipe.data is not None:
        written = [Path(recipe.data.work)] + ([Path(recipe.data.write.out)]
                                              if recipe.data.write.out else [])
        out.append(Stage("prepare", lambda: stages.prepare(recipe, strict), results_part(recipe.data),
                         [], codec["prepare"], settings={"data": results_part(recipe.data)},
                         products=[Read(data.hf), *dataset, Read(data.nemo_manifest, audio=True)],
                         writes=written))
    if recipe.codec_check.enabled:
        out.append(Stage("codec_check", lambda: stages.codec_check(recipe, codec["codec_check"]),
                         (codec["codec_check"], recipe.codec_check), [work / "codec_check"],
                         codec["codec_check"],
                         settings={"codec": codec["codec_check"], "codec_check": recipe.codec_check},
                         reads=[Read(Path(stages.manifest_of(recipe)), audio=True)]))
    if recipe.codec_finetune is not None:
        cfg = recipe.codec_finetune
        manifests = [Read(Path(m), audio=True) for m in (cfg.train_manifest, cfg.val_manifest) if m]
        out.append(Stage("codec_finetune", lambda: stages.codec_finetune(recipe), cfg,
                         [Path(cfg.run_dir), work / "codec"], codec["codec_finetune"],
                         settings={"codec_finetune": cfg}, reads=manifests,
                         products=[Read(stages.finetuned_codec(recipe))],
                         writes=[work / "codec_finetune.yaml"]))
    if recipe.learn.enabled:
        # Before `train`: it needs none of the adaptation's stages, so changing them (or the
        # samples) does not redo it, and the results row's run time counts it.
        out.append(learn_stage(recipe, codec["learn"]))
    trained = Read(run_dir, leave_out=RUN_LOGS)  # what export reads of the run
    out.append(Stage("train", lambda: stages.train(generator), generator, [run_dir], codec["train"],
                     settings={"generator": generator}, reads=dataset, products=[trained]))
    out.append(Stage("export", lambda: stages.export(recipe), recipe.export, [work / "export"],
                     settings={"export": recipe.export, "generator.mode": recipe.generator.mode},
                     reads=[trained], products=[merged, Read(work / "export" / "adapter")]))
    if recipe.eval.enabled:
        # Before `sample`, so that changing the samples does not redo the eval.
        out.append(Stage("eval", lambda: evaluate(recipe, evaluation, done), evaluation,
                         [work / "eval"], codec["eval"], settings=eval_settings(recipe, evaluation),
                         reads=[merged, Read(run_dir / "data_stats.json"), *dataset],
                         writes=[work / "results.md"] + ([Path(recipe.readme)] if recipe.readme else []),
                         not_read=("eval.dataset.from_run",)))
    if recipe.sample.texts:
        def sample():
            return stages.sample(recipe, codec["sample"], _merged(done, "the sample stage"))
        out.append(Stage("sample", sample, (recipe.sample, codec["sample"]),
                         stages.sample_files(recipe),
                         codec["sample"], reads=[merged, *dataset],
                         settings={"sample": recipe.sample, "codec": codec["sample"],
                                   "generator.data.train": recipe.generator.data.train}))
    if recipe.prefer.enabled:
        # Last: the costliest, and nothing else reads it
        preferring = dataclasses.replace(recipe.prefer, codec=codec["prefer"])
        out.append(Stage("prefer", lambda: stages.prefer(preferring, _merged(done, "the prefer stage")),
                         preferring, [Path(preferring.run_dir)], codec["prefer"],
                         settings={"prefer": preferring}, reads=[merged, *dataset]))
    return out


def eval_settings(recipe: Recipe, evaluation) -> dict:
    """The eval stage's own section, and what it takes from the others: the base it builds
    when the generator starts from random weights, the training set it reads the held-out
    speakers from, and the tables its row goes to."""
    return {"eval": evaluation, "generator.model": recipe.generator.model,
            "generator.trainer.seed": recipe.generator.trainer.seed,
            "generator.data.train": recipe.generator.data.train, "name": recipe.name,
            "readme": recipe.readme}


def learn_stage(recipe: Recipe, codec: str) -> Stage:
    """The learn stage: its own section, the training it derives from the generator's settings
    (:func:`learning.train_config`), the dataset it takes its clips from and its codec."""
    from kani_adapt.recipes import learning

    training = learning.train_config(recipe)
    return Stage("learn", lambda: learning.learn(recipe, codec), (recipe.learn, training, codec),
                 [learning.folder(recipe), *learning.wav_paths(recipe).values()], codec,
                 settings={"learn": recipe.learn, "generator": training, "codec": codec,
                           "generator.data.train": recipe.generator.data.train})


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
    state, digests = _read_state(work), Digests(work)
    outputs: dict[str, dict] = {}
    chain = ""
    for stage in plan(recipe, outputs, strict):
        if leading is not None and stage.name not in leading:
            break
        chain = legacy_hash(stage.config, chain)
        previous = state.get(stage.name, {})
        settings, inputs = flatten(stage.settings), read_inputs(stage, digests)
        decision = decide(previous, settings, inputs, work, chain)
        log(f"[{stage.name}] {decision.why}")
        record = {"status": "started", "why": decision.why, "settings": settings, "inputs": inputs,
                  **({"codec": stage.codec} if stage.codec else {}),
                  **({"kept": previous["kept"]} if previous.get("kept") else {})}
        if not decision.run:
            outputs[stage.name] = previous["outputs"]
            state[stage.name] = {**record, **{k: previous[k] for k in KEPT_WHEN_SKIPPED
                                              if k in previous}, "status": "done"}
            _write_state(work, state, digests)
            continue
        if decision.clean:
            record["kept"] = record.get("kept", []) + _clean(stage, work, log)
        state[stage.name] = record
        _write_state(work, state, digests)
        start = time.time()
        outputs[stage.name] = stage.run()
        produced = {str(r.path): digests.of(r) for r in stage.products}
        verdict = output_verdict(previous.get("produced"), produced)
        state[stage.name] = {**record, "status": "done", "outputs": outputs[stage.name],
                             "seconds": round(time.time() - start, 1),
                             **({"produced": produced, "output": verdict} if produced else {})}
        if verdict == "identical":
            log(f"[{stage.name}] its output is identical to its last run's: the stages reading "
                "it are not redone for it")
        _write_state(work, state, digests)
    return outputs


KEPT_WHEN_SKIPPED = ("outputs", "seconds", "produced", "output")


def read_inputs(stage: Stage, digests: Digests) -> dict[str, str]:
    """The digest of everything ``stage`` reads now: what it names in ``reads``, then each local
    file or folder its settings name (never what it writes itself)."""
    named = local_paths(flatten(stage.settings), stage.outputs + stage.writes, stage.not_read)
    reads = list(stage.reads) + [Read(p) for p in named
                                 if all(r.path != p for r in stage.reads)]
    return {str(r.path): digests.of(r) for r in reads}


def _clean(stage: Stage, work: Path, log: Callable[[str], None]) -> list[str]:
    """Remove what the stage wrote before; a folder holding what people did is moved aside
    (its new places returned)."""
    from kani_adapt.eval.kept import kept_line, set_aside

    kept = []
    for path in stage.outputs:
        if not path.exists():
            continue
        if work.resolve() not in path.resolve().parents:
            raise ConfigError(f"stage {stage.name}: it runs again and {path} holds an older "
                              "run outside the recipe's work_dir; move it away or point the "
                              "recipe elsewhere")
        if not path.is_dir():  # one file a stage wrote (samples/: others keep files there)
            path.unlink()
            continue
        moved = set_aside(path, "kani-adapt run")
        if moved is None:
            shutil.rmtree(path)
            continue
        log(f"[{stage.name}] {kept_line(path, moved, _ratings(moved))}")
        kept.append(str(moved))
    return kept


def _ratings(folder: Path) -> str:
    """How many judgements a kept folder's listening test holds ("" without one)."""
    from kani_adapt.listen.store import FILE, tally

    counted = tally(folder / FILE) if (folder / FILE).is_file() else None
    return f"{counted[1]} judgements from {counted[0]} listeners" if counted else ""


def _read_state(work: Path) -> dict:
    path = work / STATE
    return json.loads(path.read_text()) if path.exists() else {}


def _write_state(work: Path, state: dict, digests: Digests) -> None:
    digests.save()
    write_text(work / STATE, json.dumps(state, indent=2) + "\n")
