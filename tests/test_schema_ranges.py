"""Every number a user can set is checked: a range in its section's RANGES (inherited ranges
count), a checked type such as Seed, or listed below as signed by nature."""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated

import pytest

from data_tools import config as data_config
from data_tools.contribute.config import ContributeConfig
from data_tools.stages.filter import FilterConfig
from data_tools.stages.outliers import OutliersConfig
from data_tools.stages.transcribe import TranscribeConfig
from kani_adapt.training.codec.config import CodecTrainConfig
from kani_adapt.config.typed import inherited as _inherited
from kani_adapt.eval.config import EvalConfig
from kani_adapt.recipes.schema import Recipe
from kani_adapt.scorers.failures import FailureConfig
from kani_adapt.training.config import TrainConfig

SCHEMAS = [Recipe, data_config.DataConfig, ContributeConfig, TrainConfig, CodecTrainConfig, EvalConfig]
# Thresholds that lie below zero by nature: levels in dB, a log-probability, a cosine.
SIGNED = {(FilterConfig, "min_snr_db"), (TranscribeConfig, "min_avg_logprob"),
          (OutliersConfig, "min_cosine"), (FailureConfig, "silence_db")}


def _unwrap(tp):
    """Optional[X] -> X."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return _unwrap(args[0])
    return tp


def _is_number(tp) -> bool:
    """int or float, also in a list or a union with each other (an Annotated type checks itself)."""
    args = set(typing.get_args(tp)) - {type(None)}
    return tp in (int, float) or (bool(args) and args <= {int, float} and
                                  typing.get_origin(tp) in (typing.Union, types.UnionType, list))


def numbers(cls, prefix: str = ""):
    """(dotted key, section class, field name) of every unchecked number in ``cls`` and its sections."""
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        tp = _unwrap(hints[f.name])
        args = typing.get_args(tp)
        if typing.get_origin(tp) is Annotated:
            continue
        if dataclasses.is_dataclass(tp):
            yield from numbers(tp, f"{prefix}{f.name}.")
        elif typing.get_origin(tp) is list and args and dataclasses.is_dataclass(args[0]):
            yield from numbers(args[0], f"{prefix}{f.name}[].")
        elif _is_number(tp):
            yield f"{prefix}{f.name}", cls, f.name


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda cls: cls.__name__)
def test_every_number_has_a_range_unless_it_is_signed_by_nature(schema):
    found = list(numbers(schema))
    assert len(found) > 5  # the walk reaches into the sections
    unranged = {key for key, cls, name in found
                if name not in _inherited(cls, "RANGES") and (cls, name) not in SIGNED}
    assert not unranged, f"add these to their section's RANGES (or to SIGNED): {sorted(unranged)}"
    signed = {key for key, cls, name in found if (cls, name) in SIGNED}
    assert not {key for key, cls, name in found if key in signed and name in _inherited(cls, "RANGES")}
    for _, cls, _ in found:  # no range names a field that is gone or is not a number
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(_inherited(cls, "RANGES")) <= fields, cls.__name__


def test_every_signed_setting_is_a_number_some_schema_has():
    assert SIGNED <= {(cls, name) for schema in SCHEMAS for _, cls, name in numbers(schema)}


@dataclasses.dataclass
class _Inner:
    width: float = 1.0
    depth: Annotated[int, lambda v: None] = 2  # checked by its type


@dataclasses.dataclass
class _Outer:
    inner: _Inner = dataclasses.field(default_factory=_Inner)
    items: list[_Inner] = dataclasses.field(default_factory=list)
    rate: typing.Optional[float] = None
    name: str = ""


def test_the_walk_sees_every_unchecked_number():
    assert [key for key, _, _ in numbers(_Outer)] == ["inner.width", "items[].width", "rate"]
