import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from kani_adapt import dataset
from kani_adapt.cli.main import main
from kani_adapt.core.errors import ConfigError
from kani_adapt.recipes.schema import load_recipe
from tests.helpers import tb_tags

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


def all_recipes():
    from kani_adapt.recipes.schema import recipe_files

    return recipe_files(RECIPES)


def test_there_are_recipes_for_a_language_and_two_accents():
    names = {load_recipe(p).name for p in all_recipes()}
    assert {"demo", "swahili", "german_hessian", "english_glasgow"} <= names


@pytest.mark.parametrize("path", all_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_recipe_loads_and_validates(path):
    recipe = load_recipe(path)
    assert recipe.description and recipe.generator.data.train
    header = path.read_text().splitlines()[:12]
    assert any(line.startswith("# Run:") for line in header)  # says how to run it
    assert any(line.startswith("# Data:") for line in header)  # and what data it expects


SHORT_PROMPT_SETTINGS = {"short_probes", "repeat_short_texts", "cfg_scale", "cfg_frames",
                         "text_dropout"}


@pytest.mark.parametrize("path", all_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_every_recipe_header_names_its_short_prompt_settings_by_keys_it_has(path):
    import re

    from kani_adapt.config.load import to_dict

    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    start = next(i for i, line in enumerate(header) if line.startswith("# Short prompts:"))
    end = next((i for i in range(start + 1, len(header)) if re.match(r"# \w[\w ]*:", header[i])),
               len(header))
    paragraph = header[start:end]
    keys = re.findall(r"`([\w.]+)`", " ".join(paragraph))
    assert {k.rsplit(".", 1)[-1] for k in keys} >= SHORT_PROMPT_SETTINGS
    resolved = to_dict(load_recipe(path))
    for key in keys:
        node = resolved
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{path.name}: `{key}` is no key"
            node = node[part]


def test_unknown_recipe_keys_get_a_hint(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndataset: d\ngenerator:\n  model: {init: tiny}\n  trainer:\n    max_stepz: 3\n")
    with pytest.raises(ConfigError, match="did you mean 'max_steps'"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="give `data`"):
        load_recipe(bad, ["dataset=", "generator.trainer={}"])


def _recipe(tmp_path, text: str):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\ndataset: d\ngenerator: {model: {init: tiny}}\n" + text)
    return path


def test_the_recipes_device_and_seed_reach_every_stage_that_does_not_name_its_own(tmp_path):
    path = _recipe(tmp_path, "device: cuda:1\nseed: 7\ncodec_finetune: {seed: 3}\n"
                             "data: {ingest: {sources: [{path: rec}]}, embed: {device: cpu}}\n")
    r = load_recipe(path)
    assert (r.generator.trainer.device, r.eval.device, r.codec_finetune.device) == ("cuda:1",) * 3
    assert (r.data.transcribe.device, r.data.tokenize.device) == ("cuda:1", "cuda:1")
    assert r.data.embed.device == "cpu"  # the stage's own choice wins
    assert r.data.segment.device == "cpu"  # VAD keeps its own default
    assert (r.generator.trainer.seed, r.eval.sampling.seed, r.sample.sampling.seed) == (7, 7, 7)
    assert r.codec_finetune.seed == 3
    plain = load_recipe(_recipe(tmp_path, ""))  # without them every stage keeps its defaults
    assert (plain.generator.trainer.device, plain.generator.trainer.seed) == ("auto", 1234)
    assert plain.codec_finetune is None  # an optional stage is not switched on by sharing


def embedder_fields(cls, path=""):
    """Every dotted key of a schema that names a speaker embedder: by its name, or by a default
    of the published embedder's hub id."""
    import dataclasses
    import typing

    from kani_adapt.config.defaults import SPEAKER_EMBEDDER_HUB_ID

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        section = next((a for a in (tp, *typing.get_args(tp)) if dataclasses.is_dataclass(a)), None)
        if section is not None:
            yield from embedder_fields(section, f"{path}{f.name}.")
        elif "embedder" in f.name or f.default == SPEAKER_EMBEDDER_HUB_ID:
            yield f"{path}{f.name}"


def test_every_key_that_loads_the_speaker_embedder_is_wired_from_the_recipes_one():
    from kani_adapt.recipes.schema import SHARE_SPEAKER_EMBEDDER, Recipe

    found = set(embedder_fields(Recipe))
    # The training callback's clips carry no reference to compare a voice with: a model there
    # would load to score nothing, so it is not wired (schema.py says so).
    unwired = {"speaker_embedder", "generator.eval.scorers.speaker_embedder"}
    assert {"data.embed.model", "eval.scorers.speaker_embedder"} <= found
    assert found - unwired == set(SHARE_SPEAKER_EMBEDDER)
    assert all(Recipe.WIRED[key] == "${speaker_embedder}" for key in SHARE_SPEAKER_EMBEDDER)


def test_the_recipes_speaker_embedder_reaches_the_data_and_the_eval(tmp_path):
    data = "data: {ingest: {sources: [{path: rec}]}}\n"
    r = load_recipe(_recipe(tmp_path, f"speaker_embedder: org/voices\n{data}"))
    assert (r.data.embed.model, r.eval.scorers.speaker_embedder) == ("org/voices",) * 2
    assert r.generator.eval.scorers.speaker_embedder == ""
    own = load_recipe(_recipe(tmp_path, f"speaker_embedder: org/voices\n{data}"),
                      ["eval.scorers.speaker_embedder=org/other"])
    assert (own.data.embed.model, own.eval.scorers.speaker_embedder) == ("org/voices", "org/other")
    off = load_recipe(_recipe(tmp_path, data), ["eval.scorers.speaker_embedder="])
    assert off.eval.scorers.speaker_embedder == ""  # a stage may switch similarity off


def test_the_tiny_embedder_is_built_once_into_the_work_folder_for_every_stage_using_it(tmp_path):
    from kani_adapt.recipes.runner import plan
    from kani_adapt.recipes.schema import TINY_EMBEDDER

    demo = load_recipe(RECIPES / "demo" / "demo.yaml", [f"work_dir={tmp_path}"])
    folder = str(tmp_path / TINY_EMBEDDER)
    assert (demo.data.embed.model, demo.eval.scorers.speaker_embedder) == (folder, folder)
    assert [s.name for s in plan(demo, {})][:3] == ["synthesize", "speaker_model", "prepare"]
    # a tokenized dataset instead of recordings: the eval stage alone still needs it built
    given = load_recipe(_recipe(tmp_path, "speaker_embedder: tiny\n"))
    assert given.eval.scorers.speaker_embedder.endswith(TINY_EMBEDDER)
    assert "speaker_model" in [s.name for s in plan(given, {})]
    quiet = load_recipe(_recipe(tmp_path, "speaker_embedder: tiny\n"), ["eval.enabled=false"])
    assert "speaker_model" not in [s.name for s in plan(quiet, {})]
    other = load_recipe(_recipe(tmp_path, "speaker_embedder: tiny\n"),
                        ["eval.scorers.speaker_embedder=org/voices"])
    assert "speaker_model" not in [s.name for s in plan(other, {})]


def test_a_bad_recipe_device_is_reported_once_at_the_recipes_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_recipe(_recipe(tmp_path, "device: gpu\nseed: -2\n"))
    message = str(err.value)
    assert message.startswith("2 problems") and message.count("is not a device") == 1, message
    assert "r.yaml.device: 'gpu' is not a device" in message and "r.yaml.seed: -2" in message


def test_a_recipes_data_section_is_checked_with_the_rest_of_the_recipe(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngenerator:\n  model: {init: tiny}\n  trainer:\n    max_steps: 0\n"
                   "data:\n  ingest: {sources: [{path: rec, layout: zip}]}\n"
                   "  segment: {min_seconds: 30}\n  align: {enabled: maybe}\n")
    with pytest.raises(ConfigError) as err:
        load_recipe(bad)
    msg = str(err.value)
    assert msg.startswith("4 problems: ") and "\n" not in msg
    for fragment in (f"{bad}.generator.trainer.max_steps: 0 is outside",
                     f"{bad}.data.ingest.sources[0].layout: 'zip' is not one of",
                     f"{bad}.data.segment: min_seconds (30.0) must be below max_seconds (20.0)",
                     f"{bad}.data.align.enabled: 'maybe' is not one of 'auto', 'on', 'off'"):
        assert fragment in msg
    recipe = load_recipe(bad, ["generator.trainer.max_steps=3", "data.ingest.sources=[{path: rec}]",
                               "data.segment.min_seconds=2", "data.align.enabled=off"])
    assert recipe.data.align.enabled == "off"  # YAML's boolean off, read as the switch


NOISE = ("NeMo", "GPU available", "OneLogger", "exporters", "Warning", "warn(", "Traceback",
         "Scheduler", "it/s]")


def test_eval_stage_is_wired_to_held_out_speakers_replay_and_the_recipes_readme():
    from kani_adapt.recipes.runner import codecs_in_effect

    recipe = load_recipe(RECIPES / "swahili" / "continue_pretrain.yaml")
    assert recipe.eval.enabled and codecs_in_effect(recipe)["eval"] == recipe.codec
    assert recipe.eval.dataset.from_run == recipe.generator.run_dir  # its data_stats.json
    assert recipe.eval.dataset.replay == recipe.generator.data.replay  # the forgetting line
    assert recipe.readme == ""  # the tracked table is updated only on request
    assert load_recipe(RECIPES / "swahili" / "continue_pretrain.yaml",
                       [f"readme={RECIPES / 'README.md'}"]).readme == str(RECIPES / "README.md")
    demo = load_recipe(RECIPES / "demo" / "demo.yaml")
    assert demo.eval.dataset.replay == ""  # the demo trains without replay
    fine_tuned = str(Path(demo.work_dir) / "codec" / "finetuned.nemo")  # the demo fine-tunes its codec
    assert demo.generator.eval.prompts > 0 and codecs_in_effect(demo)["train"] == fine_tuned
    with pytest.raises(ConfigError, match="eval stage needs speakers training never saw"):
        load_recipe(RECIPES / "demo" / "demo.yaml", ["generator.data.val_speakers=0"])
    assert not load_recipe(RECIPES / "demo" / "demo.yaml",
                           ["generator.data.val_speakers=0", "eval.enabled=false"]).eval.enabled


def test_readme_row_of_a_recipe_is_replaced_and_the_others_kept(tmp_path):
    from kani_adapt.recipes import results

    readme = tmp_path / "README.md"
    readme.write_text((RECIPES / "README.md").read_text())
    results.write_row(readme, "swahili", "| swahili | new |")
    results.write_row(readme, "swahili", "| swahili | newer |")
    results.write_row(readme, "yoruba", "| yoruba | first |")
    text = readme.read_text()
    assert "| swahili | newer |" in text and "| swahili | new |" not in text
    assert text.count("| swahili |") == 1 and "| demo |" in text
    table = text.split(results.README_BEGIN)[1].split(results.README_END)[0]
    assert table.strip().splitlines()[-1] == "| yoruba | first |"  # appended inside the table
    bare = tmp_path / "bare.md"
    bare.write_text("# no table\n")
    with pytest.raises(ConfigError, match="results:begin"):
        results.write_row(bare, "demo", "| demo |")


def test_readme_row_shows_intervals_paired_differences_and_the_note():
    from kani_adapt.recipes import results

    iv = lambda m, lo, hi: {"mean": m, "low": lo, "high": hi, "n": 4}  # noqa: E731
    result = {"checkpoints": {"merged": "a", "base": "b"},
              "summary": {"merged": {"dnsmos_p808": {"all": iv(2.5, 2.25, 2.75)},
                                     "failure": {"all": iv(0.5, 0.0, 1.0)}}},
              "comparisons": {"merged vs base": {"all": {"dnsmos_p808": {"diff": iv(0.25, -0.125, 0.5)}},
                                                 "forgetting": {}}},
              "verdicts": ["merged: dnsmos_p808 2.500; vs base: same on dnsmos_p808", "base: x"]}
    line = results.row("demo", result, {"train_hours": 0.015, "train_speakers": 5}, "30 generator", 61.4,
                       note="Tiny random models: meaningless numbers.")
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[0] == "demo" and cells[3] == "61 s" and cells[4] == "0.01 h, 5 speakers"
    assert cells[6] == "dnsmos_p808 2.50 [2.25, 2.75]; failure 0.50 [0.00, 1.00]"
    assert cells[7] == "dnsmos_p808 0.25 [-0.12, 0.50]"
    assert cells[8].startswith("Tiny random models: meaningless numbers. dnsmos_p808 2.500; vs base")


@pytest.mark.slow
def test_demo_runs_end_to_end_then_skips_and_redoes_only_what_changed(tmp_path, capsys):
    out = tmp_path / "demo"
    readme = tmp_path / "README.md"  # the results table the eval stage fills (not the repo's)
    readme.write_text((RECIPES / "README.md").read_text())
    extra = [f"readme={readme}"]
    proc = subprocess.run([sys.executable, "-m", "kani_adapt.cli.main", "demo", "--out", str(out), *extra],
                          cwd=REPO, capture_output=True, timeout=1800,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    console = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode == 0, console[-3000:]
    # A quiet console: only kani-adapt's own lines, no bars joined by carriage returns.
    assert "\r" not in console
    noisy = [line for line in console.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, noisy[:5]
    # 55 lines before the learn stage; the 30-s still-working lines depend on the machine's speed
    said = [line for line in console.splitlines() if ": still " not in line]
    assert len(said) < 72, console
    wav, rate = sf.read(out / "samples" / "sample_0.wav")
    assert rate == 22050 and len(wav) > 0
    assert any((out / "generator" / "tb").iterdir())
    assert tb_tags(out / "generator" / "tb", "audio")  # the recipe's codec decodes the samples
    assert (out / "export" / "merged" / "model.safetensors").is_file()
    assert (out / "export" / "adapter" / "adapter_config.json").is_file()
    assert (out / "codec" / "finetuned.nemo").is_file()
    assert (out / "codec_check" / "codec_check.md").is_file()
    # The training eval callback scored speech at each validation.
    scalars = tb_tags(out / "generator" / "tb", "scalars")
    assert {"eval/dnsmos_p808", "eval/failure"} <= set(scalars), scalars
    # The eval stage: base vs adapted, and the README row written from its eval.json.
    result = json.loads((out / "eval" / "eval.json").read_text())
    assert list(result["checkpoints"]) == ["merged", "base"] and result["items"] > 0
    assert "dnsmos_p808" in result["summary"]["merged"] and result["comparisons"]
    assert "meaningless" in (out / "eval" / "eval.md").read_text()
    # reports with players, and the listening test over the demo's eval
    assert "meaningless" in (out / "eval" / "index.html").read_text()
    assert (out / "codec_check" / "index.html").is_file() and (out / "data" / "dataset" / "report.html").is_file()
    assert f"kani-adapt listen {out / 'eval'} --listeners 6" in console
    _serves_the_demo_eval(out / "eval")
    own = (out / "results.md").read_text()  # the run's own table: always written
    assert own.count("| demo |") == 1
    row = next(line for line in readme.read_text().splitlines() if line.startswith("| demo |"))
    assert "not run yet" not in row and "meaningless" in row and "dnsmos_p808" in row
    assert result["verdicts"][0].split(": ", 1)[1] in row
    state = json.loads((out / "stages.json").read_text())
    assert all(s["status"] == "done" for s in state.values()) and len(state) == 10
    _the_adapted_generator_says_a_taught_clip_back_and_the_base_does_not(out, console)
    # The tiny world has real lengths: a clip's frames after repeat-dropping are 80-105 % of what
    # NanoCodec's 12.5 frames/s give its duration, and the eval speaks more than one frame.
    table = dataset.read(dataset.DatasetLayout.in_work(out / "data").hf)
    ratios = [r[dataset.ENCODED_LEN] / (r[dataset.DURATION] * 12.5) for r in table]
    assert len(ratios) >= 30 and 0.8 <= min(ratios) and max(ratios) <= 1.05, sorted(ratios)[:3]
    utterances = pd.read_parquet(out / "eval" / "utterances.parquet")
    assert (utterances["frames"] > 1).all(), utterances[["checkpoint", "frames"]]
    capsys.readouterr()

    readme.write_text((RECIPES / "README.md").read_text())
    assert main(["demo", "--out", str(out), *extra]) == 0
    log = capsys.readouterr().out
    assert log.count("skipped") == 10 and "[eval] skipped: same settings and inputs" in log
    assert "[learn] skipped: same settings and inputs" in log
    assert log.count("learned: the adapted generator says") == 1
    committed = (RECIPES / "README.md").read_text().split("| demo |")[1].splitlines()[0]
    assert readme.read_text().split("| demo |")[1].splitlines()[0] == committed  # untouched

    assert main(["demo", "--out", str(out), "sample.sampling.max_frames=8", *extra]) == 0
    log = capsys.readouterr().out
    assert log.count("skipped") == 9
    assert "[sample] running: settings changed: sample.sampling.max_frames (60 -> 8)" in log
    assert json.loads((out / "samples" / "samples.json").read_text())[0]["frames"] <= 8
    # A report-only option reruns its report only; the listening test stays where it was.
    assert main(["demo", "--out", str(out), "sample.sampling.max_frames=8", "codec_check.max_clips=6",
                 *extra]) == 0
    log = capsys.readouterr().out
    assert log.count("skipped") == 9 and "[codec_check] running: settings changed: " \
        "codec_check.max_clips (12 -> 6)" in log
    assert (out / "eval" / "listening.sqlite").is_file() and (out / "eval" / "listening.json").is_file()
    assert all((out / "samples" / f"learned_{n}.wav").is_file() for n in ("adapted", "base", "roundtrip"))


LEARNED = re.compile(r"^learned: the adapted generator says clip '(.+)' back after (\d+) steps "
                     r"\(mel distance ([\d.]+) to its codec round trip, (\d+)/(\d+) frames exact; "
                     r"base ([\d.]+), (\d+)/\d+\)$", re.M)


def _the_adapted_generator_says_a_taught_clip_back_and_the_base_does_not(out, console):
    """The learned line's claim, checked from the files: the clip's codes from the dataset,
    decoded by the demo's codec, are the round-trip WAV; `kani-adapt generate` with the
    exported learned model says exactly those codes and writes the adapted WAV; the two
    distances recomputed from the WAVs are the line's, the adapted near 0 and the base far."""
    from kani_adapt.codec.metrics import mel_distance
    from kani_adapt.codec.registry import load_codec
    from kani_adapt.models.generator.synthesize import decode_one
    from tests.learning import world as W

    found = LEARNED.search(console)
    assert found, console[-2000:]
    clip, steps, adapted, exact, frames, base, base_exact = found.groups()
    asked = load_recipe(RECIPES / "demo" / "demo.yaml").learn
    assert int(steps) == asked.steps and exact == frames and int(base_exact) < int(frames) // 2
    table = dataset.read(dataset.DatasetLayout.in_work(out / "data").hf)
    row = next(r for r in table if r[dataset.SOURCE] == clip)
    codes = W.codes_of(row)  # as training reads them
    assert len(codes) == int(frames) >= 20
    codec = load_codec(str(out / "codec" / "finetuned.nemo"))
    roundtrip = decode_one(codec, codes)
    wavs = {n: sf.read(out / "samples" / f"learned_{n}.wav", dtype="float32") for n in
            ("adapted", "base", "roundtrip")}
    assert all(rate == 22050 for _, rate in wavs.values())
    np.testing.assert_allclose(wavs["roundtrip"][0], roundtrip, atol=2 / 32768)  # 16-bit WAV
    said = W.generate(out / "learn" / "merged", row, out / "regenerated",
                      codec=str(out / "codec" / "finetuned.nemo"))
    assert np.array_equal(said, codes)
    regenerated, _ = sf.read(sorted((out / "regenerated").glob("*.wav"))[-1], dtype="float32")
    np.testing.assert_allclose(wavs["adapted"][0], regenerated, atol=2 / 32768)
    distance = {n: mel_distance(wavs["roundtrip"][0], wavs[n][0], 22050) for n in ("adapted", "base")}
    assert abs(distance["adapted"] - float(adapted)) < 0.015
    assert abs(distance["base"] - float(base)) < 0.015
    assert distance["adapted"] < 0.05 and distance["base"] > 0.3, distance
    assert distance["base"] > 10 * distance["adapted"]
    learned = json.loads((out / "learn" / "learned.json").read_text())
    assert learned["clip"] == clip and clip in learned["taught"]
    assert len(learned["taught"]) == asked.clips


def _serves_the_demo_eval(eval_dir):
    """`kani-adapt listen` over the demo's eval: a listener's first trial plays; --results runs."""
    from tests.listen.served import request, serving, token

    with serving(eval_dir, listeners=("anna",)) as (app, port):
        status, state = request(port, "GET", f"/l/{token(app, 'anna')}/state")
        assert status == 200 and state["total"] > 0
        trial = state["trial"]
        status, wav = request(port, "GET", f"/l/{token(app, 'anna')}/audio/{trial['id']}/{trial['slots'][0]}")
        assert status == 200 and wav[:4] == b"RIFF"
        assert {"merged", "base", "codec_roundtrip"} <= set(app.material.systems)
    assert main(["listen", str(eval_dir), "--results", "--resamples", "50"]) == 0
    assert (eval_dir / "listening.json").is_file()
