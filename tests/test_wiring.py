"""Keys filled from other keys (WIRED, ${key}) and paths relative to the config file, applied by
the one loader; former key names that moved between sections (RENAMED with dotted paths)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import pytest

from kani_adapt.config.load import dump_yaml, load_config, load_saved_config
from kani_adapt.config.typed import from_dict
from kani_adapt.core.errors import ConfigError
from kani_adapt.config.wiring import LocalPath, ModelRef, _field, resolve_paths


@dataclass
class Part:
    run_dir: str = "somewhere"
    seed: int = 1


@dataclass
class Whole:
    root: str = "/work"
    seed: Optional[int] = None
    part: Part = field(default_factory=Part)
    extra: Optional[Part] = None
    data: LocalPath = "data"
    model: ModelRef = "org/model"
    unset: str = ""
    WIRED: ClassVar[dict] = {"part.run_dir": "${root}/run", "part.seed": "${seed}",
                             "extra.run_dir": ("${unset}", "${root}/extra")}
    RANGES: ClassVar[dict] = {"seed": ">= 0"}


def test_a_wired_key_comes_from_the_keys_it_names_unless_given():
    cfg = from_dict(Whole, {"root": "/r", "seed": 4})
    assert (cfg.part.run_dir, cfg.part.seed, cfg.extra) == ("/r/run", 4, None)  # optional: not made
    given = from_dict(Whole, {"root": "/r", "part": {"run_dir": "mine"}, "extra": {}})
    assert given.part.run_dir == "mine" and given.part.seed == 1  # seed None: not copied
    assert given.extra.run_dir == "/r/extra"  # the first template whose keys have values


def test_a_wrong_value_is_reported_once_at_its_own_key():
    with pytest.raises(ConfigError) as err:
        from_dict(Whole, {"seed": -3})
    assert str(err.value) == "config.seed: -3 is outside >= 0"


def test_references_in_the_configs_own_strings_are_resolved():
    cfg = from_dict(Whole, {"root": "/r", "part": {"run_dir": "${root}/x/${seed}"}, "seed": 2})
    assert cfg.part.run_dir == "/r/x/2"
    with pytest.raises(ConfigError, match=r"config.part.run_dir: '\$\{nope\}/x' names 'nope', not a key"):
        from_dict(Whole, {"part": {"run_dir": "${nope}/x"}})
    with pytest.raises(ConfigError, match="names a key without a value"):
        from_dict(Whole, {"part": {"run_dir": "${unset}/x"}})


def test_local_paths_are_relative_to_the_config_and_model_refs_only_where_they_point(tmp_path):
    (tmp_path / "beside").mkdir()
    cfg = resolve_paths(Whole(data="d", model="org/model"), tmp_path)
    assert (cfg.data, cfg.model) == (str(tmp_path / "d"), "org/model")  # a hub id stays
    assert resolve_paths(Whole(model="beside"), tmp_path).model == str(tmp_path / "beside")
    assert resolve_paths(Whole(model="./new"), tmp_path).model == str(tmp_path / "new")
    assert resolve_paths(Whole(data="/abs"), tmp_path).data == "/abs"


def test_every_wired_key_and_reference_of_the_recipe_exists():
    from kani_adapt.recipes.schema import Recipe

    for target, templates in Recipe.WIRED.items():
        assert _field(Recipe, target)[0] is not _field(Recipe, "no.such.key")[0], target
        for template in (templates,) if isinstance(templates, str) else templates:
            for name in re.findall(r"\$\{([\w.]+)\}", template):
                assert _field(Recipe, name)[0] is not _field(Recipe, "no.such.key")[0], name


def test_a_recipe_spelling_the_former_work_reference_gets_the_new_one(tmp_path):
    from kani_adapt.recipes.schema import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("dataset: d\ngenerator: {model: {init: tiny}}\n"
                    "data: {ingest: {sources: [{path: '{work}/rec'}]}}\n")
    with pytest.raises(ConfigError, match=r"\{work\} is now written \$\{work_dir\}"):
        load_recipe(path)
    path.write_text(path.read_text().replace("{work}", "${work_dir}"))
    recipe = load_recipe(path, [f"work_dir={tmp_path / 'w'}"])
    assert recipe.data.ingest.sources[0].path == str(tmp_path / "w" / "rec")


def test_a_run_folder_written_before_the_sampling_section_reopens(tmp_path):
    from kani_adapt.training.config import TrainConfig
    from kani_adapt.training.run import prepare_run_dir

    cfg = load_config(TrainConfig, None, ["data.train=d", "model.init=tiny", f"run_dir={tmp_path / 'run'}",
                                           "sampling.max_frames=17", "sampling.temperature=0.4",
                                           "sampling.seed=3"])
    saved = tmp_path / "run" / "config.yaml"
    dump_yaml(cfg, saved)
    old = saved.read_text()
    sampling = old[old.index("sampling:"):]
    old = old.replace(sampling, "")  # an older version: the values lived in trainer and eval
    old = old.replace("  sample_prompts: 2\n", "  sample_prompts: 2\n  sample_max_frames: 17\n")
    old = old.replace("eval:\n", "eval:\n  max_frames: 17\n  temperature: 0.4\n  seed: 3\n")
    saved.write_text(old)
    assert "sampling" not in saved.read_text()
    assert load_saved_config(TrainConfig, saved) == cfg
    assert prepare_run_dir(cfg) == tmp_path / "run"  # reopened, not refused
