from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from kani_adapt.config import dump_yaml, load_config
from kani_adapt.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])


@dataclass
class Cfg:
    mode: Literal["lora", "continue_pretrain"] = "lora"
    steps: int = 10
    name: Optional[str] = None
    table: dict[str, list[int]] = field(default_factory=dict)
    fast: bool = False
    optim: Optim = field(default_factory=Optim)


def test_yaml_and_overrides_fill_typed_fields(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("mode: continue_pretrain\noptim:\n  lr: 3\n")
    cfg = load_config(Cfg, path, ["steps=5", "optim.betas=[0.8, 0.99]", "name=run1"])
    assert cfg == Cfg(mode="continue_pretrain", steps=5, name="run1",
                      optim=Optim(lr=3.0, betas=[0.8, 0.99]))
    assert load_config(Cfg, None, ["optim.lr=1e-4"]).optim.lr == 1e-4
    assert load_config(Cfg, None, ["table={a: [1, 2]}"]).table == {"a": [1, 2]}
    with pytest.raises(ConfigError, match=r"table\.a\[0\]"):
        load_config(Cfg, None, ["table={a: [x]}"])
    assert isinstance(cfg.optim.lr, float)


def test_dump_then_load_round_trips(tmp_path):
    cfg = load_config(Cfg, None, ["fast=true", "optim.lr=0.5"])
    dump_yaml(cfg, tmp_path / "out.yaml")
    assert load_config(Cfg, tmp_path / "out.yaml") == cfg


@pytest.mark.parametrize("override, message", [
    (["stpes=3"], "did you mean 'steps'"),
    (["optim.lrr=3"], "did you mean 'lr'"),
    (["mode=full"], "not one of"),
    (["steps=abc"], "expected int"),
    (["fast=1"], "expected true or false"),
    (["steps"], "key=value"),
])
def test_bad_keys_and_values_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Cfg, None, override)


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(Cfg, path)
