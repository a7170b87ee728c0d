import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from kani_adapt.cli.main import main
from kani_adapt.errors import ConfigError
from kani_adapt.recipes.schema import load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


def all_recipes():
    return sorted(RECIPES.rglob("*.yaml"))


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


def test_unknown_recipe_keys_get_a_hint(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndataset: d\ngenerator:\n  model: {init: tiny}\n  trainer:\n    max_stepz: 3\n")
    with pytest.raises(ConfigError, match="did you mean 'max_steps'"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="give `data`"):
        load_recipe(bad, ["dataset=", "generator.trainer={}"])


NOISE = ("NeMo", "GPU available", "OneLogger", "exporters", "Warning", "warn(", "Traceback",
         "Scheduler", "it/s]")


@pytest.mark.slow
def test_demo_runs_end_to_end_then_skips_and_redoes_only_what_changed(tmp_path, capsys):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "kani_adapt.cli.main", "demo", "--out", str(out)],
                          cwd=REPO, capture_output=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    console = (proc.stdout + proc.stderr).decode(errors="replace")
    assert proc.returncode == 0, console[-3000:]
    # A quiet console: only kani-adapt's own lines, no bars joined by carriage returns.
    assert "\r" not in console
    noisy = [line for line in console.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, noisy[:5]
    assert len(console.splitlines()) < 60, console
    wav, rate = sf.read(out / "samples" / "sample_0.wav")
    assert rate == 22050 and len(wav) > 0
    assert any((out / "generator" / "tb").iterdir())
    assert tb_tags(out / "generator" / "tb", "audio")  # the recipe's codec decodes the samples
    assert (out / "export" / "merged" / "model.safetensors").is_file()
    assert (out / "export" / "adapter" / "adapter_config.json").is_file()
    assert (out / "codec" / "finetuned.nemo").is_file()
    assert (out / "codec_check" / "codec_check.md").is_file()
    state = json.loads((out / "stages.json").read_text())
    assert all(s["status"] == "done" for s in state.values()) and len(state) == 8
    capsys.readouterr()

    assert main(["demo", "--out", str(out)]) == 0
    log = capsys.readouterr().out
    assert log.count("skipped") == 8

    assert main(["demo", "--out", str(out), "sample.max_frames=8"]) == 0
    log = capsys.readouterr().out
    assert log.count("skipped") == 7 and "[sample] config changed" in log
    assert json.loads((out / "samples" / "samples.json").read_text())[0]["frames"] <= 8


def tb_tags(folder: Path, kind: str) -> list[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = []
    for events in folder.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={kind: 0})
        acc.Reload()
        tags += acc.Tags().get(kind, [])
    return tags
