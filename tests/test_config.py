from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional

import pytest

from kani_adapt.config.load import dump_yaml, load_config
from kani_adapt.core.errors import ConfigError


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


def _even(value: int) -> str | None:
    return None if value % 2 == 0 else f"{value} is odd; give an even number"


@dataclass
class Base:
    width: int = 2
    RANGES = {"width": ">= 2"}
    RENAMED = {"size": "width"}


@dataclass
class Derived(Base):
    pairs: Annotated[int, _even] = 4
    depth: int = 1
    RANGES = {"depth": "> 0"}


def test_an_annotated_check_and_inherited_ranges_are_reported_with_the_others():
    assert load_config(Derived, None, ["pairs=6"]).pairs == 6
    with pytest.raises(ConfigError) as err:
        load_config(Derived, None, ["pairs=3", "width=1", "depth=0"])
    message = str(err.value)
    assert message.startswith("3 problems"), message
    assert "config.pairs: 3 is odd; give an even number" in message
    assert "config.width: 1 is outside >= 2" in message  # the base's range still applies
    assert "config.depth: 0 is outside > 0" in message
    with pytest.raises(ConfigError, match="config.pairs: expected int"):
        load_config(Derived, None, ["pairs=many"])  # the type is checked before the check runs


def test_a_saved_config_with_former_key_names_loads_under_the_new_names(tmp_path):
    from kani_adapt.config.load import load_saved_config

    saved = tmp_path / "config.yaml"
    saved.write_text("size: 8\npairs: 2\n")
    with pytest.raises(ConfigError, match="it is now called 'width'"):
        load_config(Derived, saved)  # a user's config: told to rename
    assert load_saved_config(Derived, saved) == Derived(width=8, pairs=2)  # a run folder: read


@dataclass
class Item:
    kind: Literal["a", "b"] = "a"


@dataclass
class Items:
    items: list[Item] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


def test_every_bad_item_of_a_list_is_reported_not_only_the_first():
    with pytest.raises(ConfigError) as err:
        load_config(Items, None, ["items=[{kind: x}, {kind: a}, {kind: y}]", "counts=[1, z, w]"])
    message = str(err.value)
    assert message.startswith("4 problems"), message
    for where in ("items[0].kind", "items[2].kind", "counts[1]", "counts[2]"):
        assert f"config.{where}:" in message, message
    assert load_config(Items, None, ["items=[{kind: b}]"]).items == [Item("b")]
