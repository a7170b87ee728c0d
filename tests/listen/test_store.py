"""The SQLite store: WAL, one row per judgement, plans that survive, several writers at once."""
import sqlite3
import threading

import pytest

from kani_adapt.core.errors import DataError
from kani_adapt.listen.design import Trial
from kani_adapt.listen.store import Refused, Store

TRIALS = [Trial("ab", f"i{k}", ("x", "y")) for k in range(5)]


def test_the_store_is_one_sqlite_file_in_wal_mode(tmp_path):
    store = Store(tmp_path / "listening.sqlite", "f1")
    store.add_listener("anna")
    with sqlite3.connect(tmp_path / "listening.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT name FROM listeners").fetchall() == [("anna",)]


def test_a_listener_keeps_token_seed_and_plan_across_restarts(tmp_path):
    path = tmp_path / "listening.sqlite"
    store = Store(path, "f1")
    anna = store.add_listener("anna")
    first = store.ensure_plan(anna, lambda counts: TRIALS)
    store.record(anna, first[0].id, [("x", "y", "a")], 1200)
    again = Store(path, "f1")
    assert again.add_listener("anna") == anna and again.by_token(anna.token) == anna
    assert again.ensure_plan(anna, lambda counts: pytest.fail("drawn twice")) == first
    assert again.answered(anna) == {first[0].id}


def test_one_row_per_judgement_and_only_the_next_trial_is_taken(tmp_path):
    store = Store(tmp_path / "l.sqlite", "f1")
    anna, ben = store.add_listener("anna"), store.add_listener("ben")
    plan_a = store.ensure_plan(anna, lambda c: TRIALS)
    plan_b = store.ensure_plan(ben, lambda c: TRIALS)
    with pytest.raises(Refused) as err:
        store.record(anna, plan_a[1].id, [("x", "y", "a")], 5)  # not yet due
    assert err.value.status == 409
    store.record(anna, plan_a[0].id, [("x", "y", "b")], 5)
    with pytest.raises(Refused):
        store.record(anna, plan_a[0].id, [("x", "y", "a")], 5)  # answered already
    with pytest.raises(Refused) as err:
        store.record(anna, plan_b[0].id, [("x", "y", "a")], 5)  # ben's trial
    assert err.value.status == 404
    rows = store.judgements()
    assert len(rows) == 1 and rows[0]["answer"] == "b" and rows[0]["listener_name"] == "anna"
    assert {"listener", "item", "system_a", "system_b", "answer", "elapsed_ms", "created"} <= set(rows[0])


def test_the_second_plan_sees_what_the_first_listener_got(tmp_path):
    store = Store(tmp_path / "l.sqlite", "f1")
    store.ensure_plan(store.add_listener("anna"), lambda c: TRIALS[:2])
    seen = {}
    store.ensure_plan(store.add_listener("ben"), lambda c: seen.update(c) or TRIALS[2:])
    assert seen == {t.key(): 1 for t in TRIALS[:2]}


def test_several_listeners_answering_at_once_lose_and_duplicate_nothing(tmp_path):
    store = Store(tmp_path / "l.sqlite", "f1")
    listeners = [store.add_listener(f"l{k}") for k in range(6)]
    plans = {l.name: store.ensure_plan(l, lambda c: TRIALS) for l in listeners}
    errors = []

    def answer(listener):
        try:
            for trial in plans[listener.name]:
                Store(tmp_path / "l.sqlite", "f1").record(listener, trial.id, [("x", "y", "a")], 1)
        except Exception as err:  # noqa: BLE001 - the test reports any
            errors.append(err)

    threads = [threading.Thread(target=answer, args=(l,)) for l in listeners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = store.judgements()
    assert len(rows) == 6 * len(TRIALS) and len({(r["listener"], r["trial"]) for r in rows}) == len(rows)


def test_ratings_of_other_audio_are_not_mixed_with_new_ones(tmp_path):
    Store(tmp_path / "listening.sqlite", "f1")
    with pytest.raises(DataError, match="listening.sqlite.*other audio.*move the file away"):
        Store(tmp_path / "listening.sqlite", "f2")


def test_a_closed_or_expired_test_refuses_answers_and_writes_nothing(tmp_path):
    import time

    store = Store(tmp_path / "l.sqlite", "f1")
    anna = store.add_listener("anna")
    trials = store.ensure_plan(anna, lambda c: TRIALS)
    store.expire_at(time.time() - 1)
    with pytest.raises(Refused) as err:
        store.record(anna, trials[0].id, [("x", "y", "a")], 5)
    assert err.value.status == 410 and "ended on" in str(err.value)
    store.expire_at(time.time() + 3600)
    store.record(anna, trials[0].id, [("x", "y", "a")], 5)
    first = store.close()
    assert store.close() == first and Store(tmp_path / "l.sqlite", "f1").ending()[0] == first
    with pytest.raises(Refused) as err:
        store.record(anna, trials[1].id, [("x", "y", "a")], 5)
    assert err.value.status == 410 and "closed on" in store.closed()
    assert len(store.judgements()) == 1
