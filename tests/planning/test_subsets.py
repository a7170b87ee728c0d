"""Nested, seeded subsets on two axes; the held-out speakers in none of them; a dataset too small
for what is asked stopped before any pilot with one line saying how much is needed."""
from __future__ import annotations

import types

import pytest

from kani_adapt import dataset
from kani_adapt.config.typed import from_dict
from kani_adapt.core.errors import DataError
from kani_adapt.eval.config import EvalConfig
from kani_adapt.planning import subsets
from kani_adapt.planning.config import PlanConfig
from kani_adapt.training.config import TrainConfig
from kani_adapt.training.synthetic import synthetic_rows

SPEAKERS, PER_SPEAKER = 8, 24  # 2 held out: 6 training voices of 24 clips, 2.4-4 s each


@pytest.fixture(scope="module")
def table():
    """One tag: training holds out ``val_speakers`` per tag, so these counts are of one tag."""
    rows = synthetic_rows(SPEAKERS, PER_SPEAKER, seed=3, frames_range=(30, 50))
    return dataset.to_table([{**row, dataset.TAG: "de"} for row in rows])


def recipe(val_speakers: int = 2, named=()):
    gen = from_dict(TrainConfig, {"data": {"train": "unused", "val_speakers": val_speakers},
                                  "model": {"init": "tiny"}})
    return types.SimpleNamespace(generator=gen, eval=from_dict(
        EvalConfig, {"dataset": {"speakers": list(named)}}))


def plan(**given) -> PlanConfig:
    return from_dict(PlanConfig, {"min_minutes": 0.1, **given})


def test_hours_subsets_nest_and_hold_their_share_and_no_held_out_speaker(table):
    ts = subsets.training_set(table, recipe(named=["spk7"]))
    drawn = subsets.draw(ts, plan())
    hours = [s for s in drawn if s.axis == subsets.HOURS]
    assert [s.fraction for s in hours] == [0.0625, 0.125, 0.25, 0.5, 1.0]
    for small, large in zip(hours, hours[1:]):
        assert set(small.rows) < set(large.rows)  # nested, strictly
        assert large.rows[:len(small.rows)] == small.rows  # one order, from its start
    total = ts.hours(ts.rows)
    longest = max(ts.seconds) / 3600
    for s in hours:  # the shortest start holding the share
        assert s.fraction * total - 1e-12 <= s.hours < s.fraction * total + longest + 1e-12
    assert set(hours[-1].rows) == set(ts.rows)
    names = dataset.speakers(table)
    held = set(ts.held_out)
    assert "spk7" in held and len(held) == 3  # two drawn as training draws them, one named
    assert not any(names[i] in held for s in drawn for i in s.rows)


def test_the_held_out_speakers_are_the_ones_training_holds_out(table):
    from kani_adapt.training.data import split_rows

    r = recipe()
    _, val, stats = split_rows(table, r.generator.data, r.generator.trainer.seed)
    assert subsets.training_set(table, r).held_out == sorted(stats["val_speakers"])


def test_the_same_seed_draws_the_same_subsets_and_another_seed_others(table):
    ts = subsets.training_set(table, recipe())
    assert subsets.draw(ts, plan()) == subsets.draw(ts, plan())
    assert subsets.draw(ts, plan())[0].rows != subsets.draw(ts, plan(seed=5))[0].rows


def test_voices_axis_fewer_voices_at_equal_hours_voices_nested(table):
    ts = subsets.training_set(table, recipe())
    drawn = subsets.draw(ts, plan(speaker_counts=[2, 3]))
    anchor = next(s for s in drawn if s.name == "hours-0.25")
    voices = [s for s in drawn if s.axis == subsets.VOICES]
    assert [s.voices for s in voices] == [2, 3] and anchor.voices == 6
    names = dataset.speakers(table)
    longest = max(ts.seconds) / 3600
    for s in voices:
        assert anchor.hours <= s.hours < anchor.hours + longest
    two, three = ({names[i] for i in s.rows} for s in voices)
    assert two < three  # the voices of the smaller count are among the larger's


def test_default_counts_are_half_and_a_quarter_of_the_voices_where_they_hold_the_hours(table):
    ts = subsets.training_set(table, recipe())
    counts = [s.voices for s in subsets.draw(ts, plan()) if s.axis == subsets.VOICES]
    assert counts == [2, 3]


@pytest.mark.parametrize("given, says", [
    ({"min_minutes": 5}, "these fractions need at least 80 min of training speech"),
    ({"speaker_counts": [6]}, "the training set has 6 voices (with 2 held out for eval): "
                              "record at least 1 more speaker"),
    ({"speaker_counts": [1], "speaker_fraction": 0.5, "fractions": [0.125, 0.5, 1.0]},
     "1 voices hold"),
    ({"fractions": [0.001, 0.0011, 1.0], "speaker_fraction": 1.0, "min_minutes": 0},
     "hold the same"),
])
def test_too_little_data_stops_with_one_line_saying_how_much_is_needed(table, given, says):
    ts = subsets.training_set(table, recipe())
    with pytest.raises(DataError) as err:
        subsets.draw(ts, plan(**given))
    assert says in str(err.value) and "\n" not in str(err.value)


def test_no_held_out_speaker_is_refused(table):
    with pytest.raises(DataError, match="holds out no speakers"):
        subsets.training_set(table, recipe(val_speakers=0))


def test_diversity_counts_voices_hours_and_spreads(table):
    ts = subsets.training_set(table, recipe())
    s = next(s for s in subsets.draw(ts, plan()) if s.name == "hours-1")
    d = subsets.diversity(table, ts, s.rows)
    assert d["voices"] == 6 and d["clips"] == len(s.rows) == 6 * PER_SPEAKER
    assert d["hours"] == pytest.approx(s.hours)
    least, median, most = d["hours_per_voice"]
    assert least <= median <= most and least * 6 <= s.hours <= most * 6
    low, high = d["chars_per_second"]
    assert 0 < low <= high and d["snr_db"] is None  # no filter stage measured SNR here


def test_a_subset_folder_holds_its_rows_and_the_dataset_frontend(table, tmp_path):
    from kani_adapt.text import frontend

    source = tmp_path / "dataset" / "hf"
    table.save_to_disk(str(source))
    frontend.write(source.parent, frontend.Frontend(language="de"))
    ts = subsets.training_set(table, recipe())
    s = subsets.draw(ts, plan())[1]
    hf = subsets.write(table, s, str(source), tmp_path / "pilot" / "data")
    again = dataset.read(hf)
    assert again["source"] == [table[i]["source"] for i in s.rows]
    assert frontend.read(hf.parent).language == "de"
    stamp = (hf / "state.json").stat().st_mtime_ns
    assert subsets.write(table, s, str(source), tmp_path / "pilot" / "data") == hf
    assert (hf / "state.json").stat().st_mtime_ns == stamp  # written once
