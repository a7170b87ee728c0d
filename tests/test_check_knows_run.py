"""`kani-adapt check` knows every refusal of `kani-adapt run` that needs no training, and `run`
makes it before any work: a Greek source whose script the generator's own tokenizer spells in
bytes (the trial's run stopped at training after 365 s), the export the eval and sample stages
load, the speakers training holds out and the eval and samples name, clips training would filter
out whole, espeak-ng's voices. What the run makes itself (the tiny speaker embedder's folder, the
fine-tuned codec) and ``tiny`` wherever a loader builds it are resolved, not refused.

The refusals are enumerated from the code (:func:`test_every_refusal_before_training_is_walked`):
each ``raise`` of the modules a run goes through before its first training step is a case walked
here, a check of the same preflight (tests/test_preflight.py), or says why no check can know it.
"""
from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from kani_adapt.cli.main import main

REPO = Path(__file__).resolve().parents[1]
GERMAN = ["Guten Morgen", "Wie geht es dir heute"]
GREEK = ["Καλημέρα, τι κάνεις σήμερα;", "Ο καιρός είναι πολύ ωραίος."]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def speakers(folder: Path, texts: list[str], names=("anna", "bert")) -> None:
    for speaker in names:
        (folder / speaker).mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(texts):
            sf.write(folder / speaker / f"{speaker}{i}.wav", np.zeros(24000, np.float32), 16000)
            (folder / speaker / f"{speaker}{i}.txt").write_text(text)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Two German speakers, two Greek ones, one German speaker whose transcript spells a
    control token (1.5 s clips)."""
    root = tmp_path_factory.mktemp("check_world")
    speakers(root / "de", GERMAN)
    speakers(root / "el", GREEK, ("eleni", "nikos"))
    speakers(root / "ctl", ["Hallo <custom_token_5> da"], ("carla",))
    return root


def write_recipe(world: Path, tmp_path: Path, body: str = "", sources=("de",)) -> Path:
    listed = "".join(f"      - {{path: {world / s}, tag: {'el' if s == 'el' else 'de'}}}\n"
                     for s in sources)
    path = tmp_path / "r.yaml"
    path.write_text("codec: tiny\nspeaker_embedder: tiny\ndevice: cpu\nwork_dir: work\n"
                    f"data:\n  ingest:\n    sources:\n{listed}"
                    "generator:\n  model: {init: tiny}\n" + body)
    return path


def check(capsys, path: Path, *overrides) -> tuple[int, list[str]]:
    rc = main(["check", str(path), *overrides])
    out = capsys.readouterr().out
    return rc, [line for line in out.splitlines() if line.startswith("  problem: ")]


@dataclass
class Case:
    name: str
    says: str  # what check's problem line and run's error both hold
    overrides: tuple = ()
    sources: tuple = ("de",)
    body: str = ""
    espeak: bool = False


SYNTH = ("synth:\n  voices:\n    - {voice: de, speaker: a, tag: de}\n"
         "    - {voice: VOICE, speaker: b, tag: TAG}\n  sentences: {de: [Guten Morgen]}\n")
CASES = [
    # the trial's Greek source: 90 % byte pieces with the generator's own tokenizer, and the
    # advice names the keys as a recipe spells them
    Case("fertility", "generator.data.max_byte_fallback=0 generator.data.max_fertility_ratio=0",
         sources=("el",)),
    Case("control_tokens", "spell KaniTTS2 control tokens",
         ("data.filter.numbers_to_words=false",), ("de", "ctl")),
    Case("export_for_eval", "export.merged: false, but the eval stage loads the merged export",
         ("export.merged=false",)),
    Case("export_for_samples", "export.merged: false, but the sample stage",
         ("export.merged=false", "eval.enabled=false", "sample.texts=[Hallo]")),
    Case("held_out_speakers", "generator.data.val_speakers: 2, but the recordings hold 2",
         ("generator.data.val_speakers=2",)),
    Case("eval_speakers", "eval.dataset.speakers: dora not among the speakers",
         ("eval.dataset.speakers=[dora]",)),
    Case("sample_speaker", "sample.speaker: 'dora' is not among the speakers",
         ("sample.texts=[Hallo]", "sample.speaker=dora")),
    Case("duration_filter", "keeps none of the prepared clips", ("generator.data.max_duration=0.5",)),
    Case("embedding_column", "generator.data.speaker_emb_column: 'voice'",
         ("generator.data.speaker_emb_column=voice",)),
    Case("codec_slm", "codec_finetune.slm_dir: ", body="codec_finetune: {slm_dir: nowhere}\n"),
    Case("synth_voice", "espeak-ng has no voice 'xx-nowhere'",
         body=SYNTH.replace("VOICE", "xx-nowhere").replace("TAG", "de"), espeak=True),
    Case("synth_sentences", "synth.sentences has no sentences for tag 'el'",
         body=SYNTH.replace("VOICE", "el").replace("TAG", "el"), espeak=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_check_reports_what_run_refuses_and_run_refuses_it_before_any_work(case, world, tmp_path,
                                                                           capsys):
    if case.espeak and shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    path = write_recipe(world, tmp_path, case.body, case.sources)
    rc, problems = check(capsys, path, *case.overrides)
    assert rc == 2 and any(case.says in line for line in problems), problems
    assert main(["run", str(path), *case.overrides]) == 2
    err = capsys.readouterr().err
    assert case.says in err, err
    assert not (tmp_path / "work").exists()  # refused before the first stage


def test_the_checks_recipe_world_is_ready_as_written(world, tmp_path, capsys):
    """The cases above differ from a ready recipe by their overrides alone."""
    rc, problems = check(capsys, write_recipe(world, tmp_path))
    assert rc == 0 and problems == []


def test_fertility_is_measured_with_the_generators_own_tokenizer(world, tmp_path, capsys,
                                                                 base_ckpt):
    """Not filter.tokenizer's report (written only when that key is set, and only after the data
    are prepared): the tokenizer of generator.model.init, a size or a checkpoint folder."""
    path = write_recipe(world, tmp_path, sources=("el",))
    rc, problems = check(capsys, path, f"generator.model.init={base_ckpt}")
    assert rc == 2 and "tag el: the tokenizer falls back to bytes" in problems[0], problems
    assert "90% of its tokens are byte pieces" in problems[0]
    rc, problems = check(capsys, path, "generator.mode=full")  # full training learns the bytes
    assert rc == 0, problems
    rc, problems = check(capsys, path, "generator.data.max_byte_fallback=0",
                         "generator.data.max_fertility_ratio=0")
    assert rc == 0, problems  # the advice, followed, is accepted


def test_names_the_run_builds_or_makes_itself_are_resolved_not_refused(world, tmp_path, capsys):
    path = write_recipe(world, tmp_path, "codec_finetune: {discriminators: []}\n")
    rc, problems = check(capsys, path, "speaker_embedder=org/not-here", "data.embed.model=tiny",
                         "eval.scorers.speaker_embedder=tiny")
    assert rc == 0, problems  # tiny: every loader of a speaker embedder builds it
    made = ["generator.codec=${work_dir}/codec/finetuned.nemo",
            "eval.codec=${work_dir}/codec/finetuned.nemo", "generator.eval.prompts=1",
            "generator.eval.scorers.speaker_embedder=${work_dir}/models/speaker-embedder"]
    rc, problems = check(capsys, path, *made)
    assert rc == 0, problems  # made by codec_finetune and speaker_model before they are read
    rc, problems = check(capsys, path, "speaker_embedder=org/not-here", *made)
    assert rc == 2 and any("generator.eval.scorers.speaker_embedder" in p for p in problems), \
        problems  # the same folder is refused when no stage makes it


@pytest.mark.slow
def test_a_run_with_the_names_it_makes_itself_runs_through(tmp_path, capsys):
    """What check resolves, run uses: the demo, whose eval and training callback name the
    fine-tuned codec and the speaker embedder's folder the run makes."""
    made = ["generator.codec=${work_dir}/codec/finetuned.nemo",
            "eval.codec=${work_dir}/codec/finetuned.nemo",
            "generator.eval.scorers.speaker_embedder=${work_dir}/models/speaker-embedder",
            "generator.trainer.max_steps=2", "generator.trainer.val_every=2",
            "generator.trainer.ckpt_every=2", "sample.texts=[]"]
    demo = REPO / "recipes" / "demo" / "demo.yaml"
    out = tmp_path / "demo"
    assert main(["check", str(demo), f"work_dir={out}", *made]) == 0
    capsys.readouterr()
    assert main(["demo", "--out", str(out), *made]) == 0, capsys.readouterr()
    assert (out / "eval" / "eval.json").is_file()


# --- the enumeration --------------------------------------------------------------------------

# The modules a run goes through before the first training step (and the stages after it whose
# refusals follow from the recipe alone), each raise keyed by the longest literal part of its
# message. The preflight modules (recipes/preflight.py, fertility_gate.py, training, eval and
# data preflight) return findings that check and run share; schema.py's validate and every
# loader check run when either command loads the recipe.
SCANNED = ["kani_adapt/recipes/runner.py", "kani_adapt/recipes/synth.py",
           "kani_adapt/recipes/evaluation.py", "kani_adapt/training/data.py",
           "kani_adapt/training/run.py", "kani_adapt/training/lora.py",
           "kani_adapt/training/export.py", "kani_adapt/eval/dataset_set.py",
           "kani_adapt/training/split.py", "kani_adapt/training/batching.py::_budget_from",
           "kani_adapt/dataset.py::voice"]  # the sample stage's speaker
# Each refusal found there, by a piece of the literal text of its message (the longest).
WALKED = {  # -> the cases above (or the test) that show check reports it and run refuses first
    "needs export.merged: true": "export_for_eval, export_for_samples",
    "synth.sentences has no sentences": "synth_sentences",
    "training held out no speakers": "load: schema validate refuses val_speakers 0 without "
    "eval.dataset.speakers (tests/test_recipes.py)",
    "of speaker embeddings": "embedding_column",
    " row ": "control_tokens",  # encode_text's refusal, prefixed with the row
    " | ": "fertility",  # check_fertility's gate lines, joined
    "held-out validation speaker(s) and still train": "held_out_speakers",
    "no training rows left after the duration filter": "duration_filter",
    "no rows for speaker(s)": "eval_speakers",
    "is not a speaker of the dataset": "sample_speaker",
    "no eval items from the held-out speakers": "eval_speakers, held_out_speakers",
    "a dataset eval set needs dataset.speakers": "wired: the recipe's eval.dataset.from_run is "
    "generator.run_dir (tests/test_recipes.py)",
}
NOT_KNOWABLE = {  # -> why no check can know it before the run
    "holds an older run outside": "a rerun: a stage's earlier outputs outside the work folder "
    "(the runner's invalidation decides when they are replaced)",
    "choose a new run_dir or restore those values": "a rerun: a run folder an earlier run left",
    "give a number or the budget probe": "a programming error, not a user's input",
    "lora.r must be at least 1": "the schema's range lora.r >= 1 refuses it at load",
    "matched no layer of this model": "the bundled presets match every LFM2 layer; only a "
    "foreign base model misses them, seen when it is built",
    ": no checkpoints/": "export after a training that left no checkpoint",
    "not a run directory": "export of a folder training did not write",
    "no such listening results": "`export --listening`, not a stage of a run",
    "no adapter_config.json": "loading an adapter, not a stage of a run",
    "unknown tensors": "loading an adapter, not a stage of a run",
    "name the speakers with dataset.speakers": "a data_stats.json training wrote, damaged later",
    "says training trained on": "which speakers train is written to data_stats.json when "
    "training starts (data.val_speakers per tag, seeded); check could mirror that choice, it "
    "does not yet",
}


def raise_texts(scanned: str) -> list[str]:
    """The longest literal part of the message of every ``raise X(...)`` in a module (or in one
    function of it: ``module.py::function``)."""
    module, _, function = scanned.partition("::")
    tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
    if function:
        tree = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    texts = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args):
            continue
        parts = [n.value for n in ast.walk(node.exc.args[0])
                 if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        texts.append(max(parts, key=len, default=""))
    return texts


def test_every_refusal_before_training_is_walked_or_explained():
    found = [text for scanned in SCANNED for text in raise_texts(scanned)]
    sorted_out = {**WALKED, **NOT_KNOWABLE}
    for text in found:
        keys = [key for key in sorted_out if key in text]
        assert len(keys) == 1, f"refusal {text!r}: walk it here or say why check cannot know it"
    gone = [key for key in sorted_out if not any(key in text for text in found)]
    assert not gone, f"refusals that are gone: {gone}"
    named = {name.strip() for why in WALKED.values() for name in why.split(",")}
    assert {c.name for c in CASES} - named == {"codec_slm", "synth_voice"}  # no raise of their own
