"""Validation holds out whole speakers per tag, and the eval evaluates exactly those."""
import json

import numpy as np
import pytest

from kani_adapt.core.errors import DataError
from kani_adapt.training.split import describe, held_out, speakers_by_tag, split_rows
from kani_adapt.training.config import TrainDataConfig


def table(rows: list[tuple[str, str]], per_speaker: int = 3):
    """A dataset of (speaker, tag) rows, ``per_speaker`` clips each (2 s)."""
    from datasets import Dataset

    data = [(s, t) for s, t in rows for _ in range(per_speaker)]
    return Dataset.from_dict({"speaker": [s for s, _ in data], "tag": [t for _, t in data],
                              "duration": [2.0] * len(data)})


def cfg(**change) -> TrainDataConfig:
    return TrainDataConfig(**{"train": "d", "val_speakers": 1, **change})


@pytest.mark.parametrize("seed", [0, 1, 1234, 7])
@pytest.mark.parametrize("k", [1, 2])
def test_one_tag_holds_out_the_speakers_it_always_did(seed, k):
    """A single tag: the seeded permutation of the sorted speaker names, as before tags counted."""
    names = [f"spk{i}" for i in range(5)]
    t = table([(s, "de") for s in reversed(names)])
    train, val, stats = split_rows(t, cfg(val_speakers=k), seed)
    before = set(np.random.default_rng(seed).permutation(sorted(names))[:k].tolist())
    assert set(stats["val_speakers"]) == before
    assert {t["speaker"][i] for i in val} == before and not before & {t["speaker"][i] for i in train}


def test_one_tag_without_a_speaker_left_to_train_is_refused():
    with pytest.raises(DataError, match="data.val_speakers=0"):
        split_rows(table([("a", "de"), ("b", "de")]), cfg(val_speakers=2), 0)


def test_every_tag_with_two_speakers_gives_one_and_a_lone_speaker_trains():
    t = table([("d1", "de"), ("d2", "de"), ("d3", "de"), ("g1", "en_glasgow"),
               ("g2", "en_glasgow"), ("s1", "en_scouse")])
    train, val, stats = split_rows(t, cfg(), 1234)
    held = stats["val_speakers_by_tag"]
    assert len(held["de"]) == 1 and len(held["en_glasgow"]) == 1 and held["en_scouse"] == []
    assert stats["tags_without_held_out"] == {"en_scouse": 1}
    trained = {t["speaker"][i] for i in train}
    assert "s1" in trained and not trained & set(stats["val_speakers"])
    assert stats["trained_speakers"] == sorted(trained)
    assert {t["tag"][i] for i in val} == {"de", "en_glasgow"}
    assert "en_scouse (1 speaker)" in describe(stats)


def test_a_small_validation_cap_still_keeps_every_held_out_tag():
    t = table([("d1", "de"), ("d2", "de"), ("g1", "en"), ("g2", "en")], per_speaker=10)
    _, val, _ = split_rows(t, cfg(val_max_items=4), 0)
    tags = [t["tag"][i] for i in val]
    assert len(val) == 4 and tags.count("de") == 2 and tags.count("en") == 2


def test_more_held_out_than_a_tag_can_give_leaves_it_one_speaker_to_train():
    t = table([("d1", "de"), ("d2", "de"), ("d3", "de"), ("g1", "en"), ("g2", "en")])
    _, _, stats = split_rows(t, cfg(val_speakers=5), 3)
    assert [len(v) for v in stats["val_speakers_by_tag"].values()] == [2, 1]


def test_a_speaker_of_two_tags_is_never_a_tags_last_training_voice():
    # "both" is the only other speaker of en: holding it out for de would leave en untrained
    by_tag = speakers_by_tag(["a", "both", "both", "e"], ["de", "de", "en", "en"], [0, 1, 2, 3])
    for seed in range(20):
        held = held_out(by_tag, 1, seed)
        for pool in by_tag.values():
            assert set(pool) - held, (seed, held)


def test_no_held_out_speakers_when_asked_for_none():
    _, val, stats = split_rows(table([("a", "de"), ("b", "en")]), cfg(val_speakers=0), 0)
    assert val == [] and stats["val_speakers"] == [] and stats["tags_without_held_out"] == {}


def test_the_eval_evaluates_every_held_out_speaker_and_refuses_a_trained_one(tmp_path):
    """Training's split (data_stats.json) decides the eval's speakers, tag by tag."""
    from kani_adapt.eval.config import DatasetSetConfig
    from kani_adapt.eval.dataset_set import held_out_speakers, load_dataset_items
    from kani_adapt.training.synthetic import synthetic_dataset
    from kani_adapt.training.data import GeneratorData
    from kani_adapt.config.load import load_config
    from kani_adapt.training.config import TrainConfig
    from tests.helpers import REQUIRED, tiny_generator

    path = synthetic_dataset(tmp_path / "d", n_speakers=5, per_speaker=2, seed=1)
    _, tok = tiny_generator()
    train_cfg = load_config(TrainConfig, None, [*REQUIRED, f"data.train={path}"])
    data = GeneratorData(train_cfg, tok)
    data.setup()
    run = tmp_path / "run"
    run.mkdir()
    (run / "data_stats.json").write_text(json.dumps(data.stats))
    trained = {data.train_set[i].speaker for i in range(len(data.train_set))}
    items = load_dataset_items(str(path), DatasetSetConfig(from_run=str(run), per_speaker=2))
    evaluated = {it.speaker for it in items}
    assert evaluated == set(data.stats["val_speakers"]) and not evaluated & trained
    assert {it.tag for it in items} == {"de", "en_glasgow"}  # every tag, not one speaker in all
    with pytest.raises(DataError, match="trained on"):
        held_out_speakers(DatasetSetConfig(from_run=str(run), speakers=[sorted(trained)[0]]))
    assert held_out_speakers(DatasetSetConfig(from_run=str(run), speakers=["someone_else"])) == \
        ["someone_else"]
