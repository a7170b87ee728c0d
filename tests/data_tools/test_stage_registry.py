"""The stage registry is the one list: a stage's module holds its config section, the models it
loads and the key naming its device, and the data config, the preflight, the recipe's device
wiring, the CLI and `check --show-config` follow from it. A new stage is one module and one
entry in ``registry.ORDER``, shown here with a stage that exists only in a temporary folder."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from data_tools import config, preflight, registry
from data_tools.stages.kit import BaseStage, Kept, Model
from kani_adapt.config.shared import Device
from kani_adapt.config.wiring import ModelRef
from kani_adapt.recipes.schema import SHARE_DEVICE, Recipe

ROOT = Path(__file__).resolve().parents[2]

# A stage in miniature: everything a new stage writes, in its own module.
ECHO = '''"""Stage echo: every clip passed on as it came."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from data_tools.stages.kit import BaseStage, Kept, Model
from kani_adapt.config.shared import Device
from kani_adapt.config.wiring import ModelRef


@dataclass
class EchoConfig:
    model: ModelRef = "someone/echo-model"  # what it loads
    device: Device = "auto"  # where it runs
    threshold: float = 0.5

    RANGES: ClassVar[dict[str, str]] = {"threshold": "[0, 1]"}


class Echo(BaseStage):
    name = section = "echo"
    config = EchoConfig
    help = "pass every clip on as it came"
    model, device = True, "device"
    models = (Model("echo.model", "echo model", given="echo"),)

    def process_item(self, ctx, utt) -> Kept:
        return Kept([utt])


STAGE = Echo()
'''

# Run in a fresh interpreter, so the registry is changed before anything reads it; the stage's
# module lies in a temporary folder added to the stages' package, nothing of the project changes.
CHILD = '''
import contextlib, io, json, sys
import data_tools.stages
data_tools.stages.__path__.append(sys.argv[1])
from data_tools import registry
registry.ORDER = (*registry.ORDER[:-1], "echo", "write")  # the one entry

from data_tools import cli, config
from kani_adapt.core.errors import ConfigError
from kani_adapt.recipes import preflight
from kani_adapt.recipes.schema import load_recipe

recipe = load_recipe(sys.argv[2])
shown = io.StringIO()
with contextlib.redirect_stdout(shown):
    code = cli.main(["check", sys.argv[3], "--show-config"])
mistakes = []
for override in ("echo.treshold=0.1", "echo.threshold=2"):
    try:
        config.load_config(sys.argv[3], [override])
    except ConfigError as err:
        mistakes.append(str(err))
stage_help = io.StringIO()
with contextlib.redirect_stdout(stage_help), contextlib.suppress(SystemExit):
    cli.build_parser().parse_args(["echo", "--help"])
print(json.dumps({
    "devices": [recipe.data.echo.device, recipe.data.segment.device, recipe.data.embed.device],
    "threshold": recipe.data.echo.threshold,
    "recipe_findings": [f.line for f in preflight.findings(recipe)],
    "check": shown.getvalue(), "check_code": code, "mistakes": mistakes,
    "help": cli.build_parser().format_help(), "stage_help": stage_help.getvalue(),
}))
'''


@pytest.fixture(scope="module")
def with_echo(tmp_path_factory) -> dict:
    """What a fresh process with the echo stage registered says (one process for every test)."""
    tmp = tmp_path_factory.mktemp("echo")
    (tmp / "stages").mkdir()
    (tmp / "stages" / "echo.py").write_text(ECHO)
    recipe = tmp / "r.yaml"
    recipe.write_text("name: r\ndataset: d\ngenerator: {model: {init: tiny}}\ndevice: cuda:7\n"
                      "data: {ingest: {sources: [{path: rec}]}, echo: {threshold: 0.25}}\n")
    data = tmp / "data.yaml"
    data.write_text("work: work\ningest: {sources: [{path: rec}]}\necho: {device: cuda:7}\n")
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp / "stages"), str(recipe),
                           str(data)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow  # a fresh interpreter imports the recipe's preflight
def test_a_new_stage_gets_the_recipes_device_from_its_registry_entry(with_echo):
    # the recipe's device reaches the new stage's section; the VAD keeps its own, and so does
    # a stage whose section is left alone
    assert with_echo["devices"] == ["cuda:7", "cpu", "cuda:7"]
    assert with_echo["threshold"] == 0.25  # the recipe's data section holds the new section


@pytest.mark.slow  # a fresh interpreter imports the recipe's preflight
def test_a_new_stage_reaches_the_data_preflight_with_its_model_and_device(with_echo):
    recipe = [line for line in with_echo["recipe_findings"] if line.startswith("data.echo")]
    assert recipe == [
        "data.echo.model: echo model someone/echo-model is not on this machine and "
        "HF_HUB_OFFLINE is set; fetch it where the hub is reachable (`hf download "
        "someone/echo-model`) or give a local path"]  # cuda:7: reported once, at the recipe's key
    check = with_echo["check"]
    assert with_echo["check_code"] == 2
    assert "  problem: echo.model: echo model someone/echo-model is not on this machine" in check
    assert "  problem: echo.device: cuda:7, but this machine" in check or \
        "  problem: echo.device: cuda:7, but this torch build" in check


@pytest.mark.slow  # a fresh interpreter imports the recipe's preflight
def test_a_new_stage_is_in_the_config_the_cli_and_the_shown_config(with_echo):
    assert "echo:\n  model: someone/echo-model\n  device: cuda:7\n  threshold: 0.5\n" \
        in with_echo["check"]  # --show-config, in pipeline order (before write)
    assert with_echo["check"].index("echo:") < with_echo["check"].index("write:")
    typo, out_of_range = with_echo["mistakes"]
    assert "data.yaml.echo: unknown key 'treshold'; did you mean 'threshold'?" in typo
    assert "data.yaml.echo.threshold: 2.0 is outside [0, 1]" in out_of_range
    assert "filter -> embed -> outliers -> tokenize -> echo -> write" in with_echo["help"]
    assert "sets echo.device" in with_echo["stage_help"] and "--shard" in with_echo["stage_help"]


@dataclasses.dataclass
class _EchoConfig:
    model: ModelRef = "someone/echo-model"
    device: Device = "auto"


class _Echo(BaseStage):
    name = section = "echo"
    config = _EchoConfig
    model, device = True, "device"
    models = (Model("echo.model", "echo model", given="echo",
                    when=lambda cfg: cfg.echo.device != "cpu"),)

    def process_item(self, ctx, utt) -> Kept:
        return Kept([utt])


@pytest.fixture
def echo_registered(monkeypatch):
    """The registry with the echo stage before write, in this process; a config class of it."""
    real = registry.stages()
    monkeypatch.setattr(registry, "stages", lambda: [*real[:-1], _Echo(), real[-1]])
    return config.compose(registry.stages())


def test_the_preflight_checks_the_models_and_devices_the_registry_declares(echo_registered,
                                                                          monkeypatch):
    cfg = echo_registered(echo=_EchoConfig(device="cuda:7"))
    lines = [f.line for f in preflight.findings(cfg) if f.line.startswith("echo.")]
    assert [line.split(":")[0] for line in lines] == ["echo.model", "echo.device"]
    assert not [f for f in preflight.findings(cfg, given={"echo"})
                if f.line.startswith("echo.model")]  # handed in: not looked for
    off = echo_registered(echo=_EchoConfig(device="cpu"))
    assert not [f for f in preflight.findings(off) if f.line.startswith("echo.")]  # not asked for
    fetched = []
    monkeypatch.setattr(preflight.hub, "resolve_folder", fetched.append)
    preflight.fetch_models(cfg, given={"embedder"})
    assert fetched == ["someone/echo-model"]  # the models the run loads, before it starts


def test_the_data_config_is_composed_from_the_registry_in_pipeline_order():
    fields = [f.name for f in dataclasses.fields(config.DataConfig)]
    sections = registry.sections()
    assert fields == ["work", "max_rejected_fraction", "engine", "tags", *[n for n, _ in sections], "ray"]
    hints = typing.get_type_hints(config.DataConfig)
    assert all(hints[name] is cls for name, cls in sections)
    cfg = config.DataConfig()
    assert all(getattr(cfg, name) == cls() for name, cls in sections)  # each section's defaults
    assert [s.name for s in registry.stages() if s.config is not None] == [n for n, _ in sections]


def test_two_stages_cannot_share_a_section():
    twin = _Echo()
    with pytest.raises(ValueError, match="section 'echo' is empty or taken"):
        config.compose([_Echo(), twin])


def test_every_device_a_stage_has_is_declared_and_shared_unless_it_says_not():
    for stage in registry.stages():
        hints = typing.get_type_hints(stage.config or object, include_extras=True)
        devices = {name for name, tp in hints.items() if tp == Device}
        assert devices == ({stage.device} if stage.device else set()), stage.name
    data = {key for key in SHARE_DEVICE if key.startswith("data.")}
    assert data == {f"data.{k}" for k in registry.device_keys(shared=True)}
    assert data == {"data.transcribe.device", "data.embed.device", "data.tokenize.device"}
    assert "data.segment.device" not in Recipe.WIRED  # the VAD keeps its own


def test_the_switches_that_yaml_reads_as_booleans_come_from_the_sections():
    assert set(config.switches(registry.sections())) == {
        ("segment", "voice_changes"), ("transcribe", "enabled"), ("align", "enabled")}
    assert config.normalise_raw({"align": {"enabled": False}}) == {"align": {"enabled": "off"}}
