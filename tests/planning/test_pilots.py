"""Pilots as the planner hands them out: the steps rule, a failed pilot reported with its reason
while the others go on, a done pilot skipped, one whose settings changed started over. The
measuring itself (training, export, eval) runs for real in test_tiny_world.py; here it is
replaced by a stand-in that records what it was asked, so the handing-out can be checked fast."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kani_adapt.config.typed import from_dict
from kani_adapt.core.errors import DataError
from kani_adapt.eval.config import EvalConfig
from kani_adapt.planning import dispatch, pilots, plan as planning
from kani_adapt.planning.config import PlanConfig
from kani_adapt.training.config import TrainConfig


def recipe_training(**trainer):
    return from_dict(TrainConfig, {
        "data": {"train": "data/hf", "val_speakers": 2}, "model": {"init": "tiny"},
        "optim": {"warmup_steps": 100},
        "trainer": {"max_steps": 2000, "ckpt_every": 500, "log_every": 50, **trainer}})


def test_the_steps_rule_keeps_the_recipes_passes_over_the_data(tmp_path):
    gen = recipe_training(gpus_per_node=2)
    cfg = from_dict(PlanConfig, {"min_steps": 30})
    quarter = planning.training(gen, cfg, 0.25, tmp_path / "hf", tmp_path / "p")
    # 2000 steps on 2 GPUs see 4000 batches of the whole set; a quarter of it: 1000 on one GPU
    assert quarter.trainer.max_steps == 1000 and quarter.trainer.gpus_per_node == 1
    assert quarter.optim.warmup_steps == 50 and quarter.trainer.val_every == 1000
    assert quarter.data.train == str(tmp_path / "hf") and quarter.data.val_speakers == 0
    assert quarter.run_dir == str(tmp_path / "p" / "run") and quarter.trainer.sample_prompts == 0
    tiny = planning.training(gen, cfg, 0.001, tmp_path / "hf", tmp_path / "p")
    assert tiny.trainer.max_steps == 30 and tiny.trainer.ckpt_every == 30  # the floor
    # everything else is the recipe's
    assert (quarter.mode, quarter.objective, quarter.optim.lr, quarter.data.token_budget) == \
        (gen.mode, gen.objective, gen.optim.lr, gen.data.token_budget)


def make(folder: Path, name: str, hours: float = 0.1, **changes) -> pilots.Pilot:
    return pilots.Pilot(name, "hours", 1.0, hours, 3, 10, str(folder / name), "data/hf",
                        ["a", "b"], 8, recipe_training(**changes), from_dict(EvalConfig, {}))


@pytest.fixture
def measured(monkeypatch):
    """pilots._measure replaced: a pilot named bad-* raises; the others return figures."""
    calls = []

    def measure(pilot, device):
        run = Path(pilot.folder) / "run"  # what an interrupted pilot resumes from
        calls.append((pilot.name, run.exists()))
        run.mkdir(exist_ok=True)
        if pilot.name.startswith("bad"):
            raise DataError(f"{pilot.name}: the subset's dataset is unreadable; prepare again")
        return {"status": "done", "steps": 4, "train_seconds": 1.0, "sums": {"x": {"a": [1, 1]}}}

    monkeypatch.setattr(pilots, "_measure", measure)
    return calls


def test_a_failed_pilot_is_reported_with_its_reason_while_the_others_go_on(tmp_path, measured):
    todo = [make(tmp_path, "one"), make(tmp_path, "bad-two"), make(tmp_path, "three")]
    said = []
    records = dispatch.run_all(todo, "local", "cpu", 0, None, said.append)
    assert measured == [("one", False), ("bad-two", False), ("three", False)]
    assert records["one"]["status"] == records["three"]["status"] == "done"
    bad = records["bad-two"]
    assert bad["status"] == "failed"
    assert bad["reason"] == "bad-two: the subset's dataset is unreadable; prepare again"
    assert "DataError" in (tmp_path / "bad-two" / "error.txt").read_text()  # the traceback
    assert f"[bad-two] failed: {bad['reason']}" in said


def test_done_pilots_are_skipped_a_failed_one_retried_a_changed_one_started_over(tmp_path,
                                                                                 measured):
    todo = [make(tmp_path, "one"), make(tmp_path, "bad-two"), make(tmp_path, "three")]
    dispatch.run_all(todo, "local", "cpu", 0, None, lambda line: None)
    measured.clear()
    said = []
    changed = make(tmp_path, "three", max_steps=999)
    records = dispatch.run_all([todo[0], todo[1], changed], "local", "cpu", 0, None, said.append)
    # the failed one goes on from what it left; the changed one starts from nothing
    assert measured == [("bad-two", True), ("three", False)]
    assert "[one] done before with the same subset and settings: skipped" in said
    assert records["three"]["key"] == changed.key != todo[2].key
    assert (tmp_path / "three" / pilots.KEY).read_text().strip() == changed.key


def test_a_pilot_whose_settings_changed_loses_what_the_old_settings_left(tmp_path, measured):
    old = make(tmp_path, "one")
    pilots.run_pilot(old)
    leftover = tmp_path / "one" / "eval"
    leftover.mkdir()
    pilots._start(tmp_path / "one", make(tmp_path, "one", max_steps=7).key)
    assert not leftover.exists() and not (tmp_path / "one" / pilots.RECORD).exists()
    pilots._start(tmp_path / "one", make(tmp_path, "one", max_steps=7).key)  # same key: kept
    assert (tmp_path / "one" / pilots.KEY).is_file()


def test_the_key_follows_what_a_pilots_figures_depend_on(tmp_path):
    a = make(tmp_path, "one")
    assert a.key == make(tmp_path, "one").key
    assert a.key != make(tmp_path, "one", seed=5).key
    assert a.key != dataclasses.replace(a, held_out=["a"]).key


def test_pilots_are_dealt_to_gpus_longest_first_to_the_least_loaded(tmp_path):
    todo = [make(tmp_path, n, h) for n, h in (("a", 1.0), ("b", 0.5), ("c", 0.25), ("d", 0.25))]
    queues = dispatch.shares(todo, 2)
    assert [[p.name for p in q] for q in queues] == [["a"], ["b", "c", "d"]]
    assert dispatch.gpu_slots("cpu", 0) == [None]
