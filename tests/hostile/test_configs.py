"""Hostile configs: bombs, duplicates, deep nesting, bad bytes, NaN and out-of-range values.

Each is refused when the config is loaded, with one line that names the problem (and the key),
for both CLIs; nothing of the run is created.
"""
from __future__ import annotations

import dataclasses
from typing import get_type_hints

import pytest

from data_tools.cli import main as data_tools_main
from tests.helpers import REQUIRED
from kani_adapt.cli.main import main
from kani_adapt.training.codec.config import CodecTrainConfig
from kani_adapt.config.yaml_guard import MAX_BYTES, MAX_DEPTH
from kani_adapt.config.load import load_config
from kani_adapt.core.errors import ConfigError
from kani_adapt.training.config import TrainConfig
from tests.hostile.refusals import assert_refused

BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    + ["run_dir: *i", ""])


def _write(tmp_path, text: str | bytes, name="bad.yaml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


HOSTILE = {
    "billion laughs": (BOMB, "YAML bomb"),
    "duplicate key": ("optim:\n  lr: 1.0e-4\n  lr: 1.0e-3\n", "duplicate key 'lr' at line 3 (first at line 2)"),
    "deep flow nesting": ("run_dir: " + "[" * 20000 + "]" * 20000 + "\n", "nested deeper than"),
    "deep block nesting": ("".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 5)), "nested deeper than"),
    "not UTF-8": (b"run_dir: runs/\xff\xfe\n", "not UTF-8"),
    "too big": ("# padding\n" * (MAX_BYTES // 10 + 10), "more than a config may hold"),
    "NaN": ("optim:\n  lr: .nan\n", "optim.lr: nan is not a finite number"),
    "infinity": ("lora:\n  dropout: -.inf\n", "lora.dropout: -inf is not a finite number"),
    "negative lr": ("optim:\n  lr: -0.1\n", "optim.lr: -0.1 is outside > 0"),
    "zero steps": ("trainer:\n  max_steps: 0\n", "trainer.max_steps: 0 is outside >= 1"),
    "dropout of one": ("lora:\n  dropout: 1.0\n", "lora.dropout: 1.0 is outside [0, 1)"),
    "rank zero": ("lora:\n  r: 0\n", "lora.r: 0 is outside >= 1"),
    "beta above one": ("optim:\n  betas: [0.9, 1.5]\n", "optim.betas[1]: 1.5 is outside [0, 1)"),
    "top level a list": ("- a\n- b\n", "top level must be a mapping"),
    "tab indentation": ("optim:\n\tlr: 1\n", "invalid YAML at line 2"),
    "python tag": ("run_dir: !!python/object/apply:os.system ['touch x']\n", "invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_generator_config_is_refused_in_one_line(case, tmp_path, capsys):
    text, fragment = HOSTILE[case]
    config = _write(tmp_path, text)
    line = assert_refused(main, ["train", str(config), f"run_dir={tmp_path / 'run'}"], capsys,
                          str(config), fragment)
    assert len(line) < 600 and "lol, lol, lol, lol, lol" not in line
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("case", ["billion laughs", "duplicate key", "deep flow nesting", "not UTF-8",
                                  "too big", "python tag"])
def test_hostile_data_config_is_refused_in_one_line(case, tmp_path, capsys):
    text, fragment = HOSTILE[case]
    config = _write(tmp_path, text)
    assert_refused(data_tools_main, ["check", str(config)], capsys, str(config), fragment)


@pytest.mark.parametrize("case", ["billion laughs", "duplicate key", "not UTF-8", "NaN"])
def test_hostile_codec_config_is_refused_in_one_line(case, tmp_path, capsys):
    text, fragment = HOSTILE[case]
    config = _write(tmp_path, text)
    assert_refused(main, ["codec", "train", str(config), "train_manifest=m.json",
                          f"run_dir={tmp_path / 'run'}"], capsys, str(config), fragment)
    assert not (tmp_path / "run").exists()


def _float_fields(cls, prefix=""):
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _float_fields(tp, f"{prefix}{f.name}.")
        elif "float" in str(tp):
            yield f"{prefix}{f.name}"


FLOAT_FIELDS = [(TrainConfig, k) for k in _float_fields(TrainConfig)] + \
               [(CodecTrainConfig, k) for k in _float_fields(CodecTrainConfig)]


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "nan"])
@pytest.mark.parametrize("schema,key", FLOAT_FIELDS, ids=[f"{c.__name__}.{k}" for c, k in FLOAT_FIELDS])
def test_nan_and_infinity_are_refused_in_every_float_field(schema, key, value):
    base = ["train_manifest=m.json"] if schema is CodecTrainConfig else []
    text = f"[{value}, {value}]" if key.endswith("betas") else value
    with pytest.raises(ConfigError, match=f"{key.split('.')[-1]}.*not a finite number"):
        load_config(schema, None, base + [f"{key}={text}"])


def test_every_problem_of_a_config_is_reported_at_once(tmp_path):
    config = _write(tmp_path, "optim:\n  lr: 0\n  betas: [0.9, 2]\nlora:\n  r: 0\n  dropout: .nan\n"
                              "trainer:\n  max_steps: -5\n  seeed: 3\n"
                              "data:\n  train: d\nmodel:\n  init: tiny\n")
    with pytest.raises(ConfigError) as err:
        load_config(TrainConfig, config)
    message = str(err.value)
    assert "\n" not in message and message.startswith("6 problems")
    for fragment in ("optim.lr", "optim.betas[1]", "lora.r", "lora.dropout", "trainer.max_steps",
                     "unknown key 'seeed'; did you mean 'seed'?"):
        assert fragment in message, message


def test_codec_ranges_are_checked(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(CodecTrainConfig, None, ["train_manifest=m.json", "optim.lr=0", "lora.r=0",
                                             "batch_size=0", "optim.lr_decay=1.5", "workers=-1"])
    for key in ("optim.lr", "lora.r", "batch_size", "optim.lr_decay", "workers"):
        assert f"{key}:" in str(err.value), str(err.value)


def test_values_inside_the_ranges_load():
    cfg = load_config(TrainConfig, None, [*REQUIRED, "optim.lr=1e-4", "lora.dropout=0", "lora.r=1",
                                          "data.replay_ratio=0.5", "data.replay=x"])
    assert cfg.optim.lr == 1e-4 and cfg.lora.r == 1


def test_anchors_that_stay_small_are_still_allowed(tmp_path):
    config = _write(tmp_path, "optim:\n  betas: &b [0.9, 0.95]\n  freeze: [a]\nlora:\n  alpha: &x 8\n"
                              "  r: *x\n")
    cfg = load_config(TrainConfig, config, REQUIRED)
    assert cfg.lora.r == 8 and cfg.optim.betas == [0.9, 0.95]
