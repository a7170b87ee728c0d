"""The ratings: one SQLite file in the eval folder (``listening.sqlite``, WAL mode), safe with
several listeners at once.

``listeners`` holds each invite (name, token, seed); ``trials`` each listener's plan in order
(written once, so a closed tab resumes where it stopped); ``judgements`` one row per judgement:
listener, trial, item, the systems judged, the answer and how long it took. Every write is one
``BEGIN IMMEDIATE`` transaction on its own connection, so concurrent requests serialise in
SQLite instead of racing in Python.

A test ends when it is closed (``meta.closed``: when) or its links expire (``meta.expires``):
from then on every answer is refused (410) inside the same transaction that would write it,
so an answer is either acknowledged and in the results, or refused and nowhere.
"""
from __future__ import annotations

import json
import re
import secrets
import sqlite3
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kani_adapt.core.errors import DataError
from kani_adapt.eval.kept import RATINGS
from kani_adapt.listen.design import Trial

FILE = RATINGS  # in the eval folder; kept when the eval runs again (kani_adapt.eval.kept)
TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")  # the shape of an invite token (``token_urlsafe(18)``)
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS listeners (
  id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, token TEXT UNIQUE NOT NULL,
  seed INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
  id INTEGER PRIMARY KEY, listener INTEGER NOT NULL REFERENCES listeners(id),
  position INTEGER NOT NULL, design TEXT NOT NULL, item TEXT NOT NULL, stimuli TEXT NOT NULL,
  is_check INTEGER NOT NULL, UNIQUE (listener, position));
CREATE TABLE IF NOT EXISTS judgements (
  id INTEGER PRIMARY KEY, trial INTEGER NOT NULL REFERENCES trials(id),
  listener INTEGER NOT NULL REFERENCES listeners(id), design TEXT NOT NULL, item TEXT NOT NULL,
  system_a TEXT NOT NULL, system_b TEXT, answer TEXT NOT NULL, is_check INTEGER NOT NULL,
  elapsed_ms INTEGER, created REAL NOT NULL, UNIQUE (trial, system_a));
"""
JUDGEMENTS = ("SELECT j.*, l.name AS listener_name FROM judgements j JOIN listeners l ON l.id=j.listener "
              "ORDER BY j.id")


@dataclass(frozen=True)
class Listener:
    id: int
    name: str
    token: str
    seed: int


@dataclass(frozen=True)
class StoredTrial:
    id: int
    position: int
    trial: Trial


class Refused(Exception):
    """A submission the store will not take (its message says why); ``status`` for HTTP."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Store:
    def __init__(self, path: Path, fingerprint: str):
        self.path = Path(path)
        db = self._connect()
        try:
            db.executescript(SCHEMA)
        finally:
            db.close()
        with self.write() as db:
            row = db.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
            elif row[0] != fingerprint:
                raise DataError(f"{self.path}: these ratings were collected on other audio (the eval "
                                "was run again since); move the file away to start a new test")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    @contextmanager
    def write(self):
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    @contextmanager
    def read(self):
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    # closing
    def close(self) -> float:
        """Close the test (once: a second call keeps the first time); returns when it closed."""
        with self.write() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('closed', ?)", (repr(time.time()),))
            return float(db.execute("SELECT value FROM meta WHERE key='closed'").fetchone()[0])

    def expire_at(self, when: float) -> None:
        """The links stop working at ``when`` (a UNIX time)."""
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('expires', ?)", (repr(float(when)),))

    def ending(self) -> tuple[float | None, float | None]:
        """(when the test was closed, when its links expire); None for either not set."""
        with self.read() as db:
            return _ending(db)

    def closed(self, db: sqlite3.Connection | None = None) -> str:
        """Why the test takes no more answers ("" while it does)."""
        if db is None:
            with self.read() as db:
                return self.closed(db)
        closed, expires = _ending(db)
        if closed is not None:
            return f"this listening test was closed on {_when(closed)}"
        if expires is not None and time.time() >= expires:
            return f"this listening test ended on {_when(expires)}"
        return ""

    # listeners
    def add_listener(self, name: str) -> Listener:
        """The listener called ``name``, created with a fresh token and seed when new."""
        with self.write() as db:
            row = db.execute("SELECT id, name, token, seed FROM listeners WHERE name=?", (name,)).fetchone()
            if row is None:
                token, seed = secrets.token_urlsafe(18), secrets.randbelow(2 ** 31)
                cur = db.execute("INSERT INTO listeners (name, token, seed, created) VALUES (?,?,?,?)",
                                 (name, token, seed, time.time()))
                row = (cur.lastrowid, name, token, seed)
        return Listener(*row)

    def listeners(self) -> list[Listener]:
        with self.read() as db:
            return [Listener(*r) for r in db.execute("SELECT id, name, token, seed FROM listeners ORDER BY id")]

    def by_token(self, token: str) -> Listener | None:
        if not TOKEN.fullmatch(token):
            return None
        with self.read() as db:
            row = db.execute("SELECT id, name, token, seed FROM listeners WHERE token=?", (token,)).fetchone()
        return Listener(*row) if row else None

    # plans
    def ensure_plan(self, listener: Listener, make) -> list[StoredTrial]:
        """The listener's trials; ``make(counts)`` draws them the first time (``counts``: how
        often each trial was given to the other listeners)."""
        drawn = self.trials(listener)
        if drawn:  # the usual case: a read, no write lock
            return drawn
        with self.write() as db:
            if not db.execute("SELECT 1 FROM trials WHERE listener=?", (listener.id,)).fetchone():
                counts = Counter(_trial(r).key() for r in db.execute(
                    "SELECT design, item, stimuli, is_check FROM trials"))
                db.executemany("INSERT INTO trials (listener, position, design, item, stimuli, is_check) "
                               "VALUES (?,?,?,?,?,?)",
                               [(listener.id, k, t.design, t.item, json.dumps(t.stimuli), int(t.check))
                                for k, t in enumerate(make(counts))])
        return self.trials(listener)

    def trials(self, listener: Listener) -> list[StoredTrial]:
        with self.read() as db:
            rows = db.execute("SELECT id, position, design, item, stimuli, is_check FROM trials "
                              "WHERE listener=? ORDER BY position", (listener.id,)).fetchall()
        return [StoredTrial(r[0], r[1], _trial(r[2:])) for r in rows]

    def answered(self, listener: Listener) -> set[int]:
        with self.read() as db:
            return {r[0] for r in db.execute("SELECT DISTINCT trial FROM judgements WHERE listener=?",
                                             (listener.id,))}

    # judgements
    def record(self, listener: Listener, trial_id: int, rows: list[tuple[str, str | None, str]],
               elapsed_ms: int) -> None:
        """The judgements of one trial (``(system_a, system_b, answer)`` each), if it is the
        listener's next unanswered trial; else refused, nothing written."""
        with self.write() as db:
            reason = self.closed(db)
            if reason:
                raise Refused(reason, 410)
            own = db.execute("SELECT position, design, item, is_check FROM trials WHERE id=? AND listener=?",
                             (trial_id, listener.id)).fetchone()
            if own is None:
                raise Refused(f"trial {trial_id} is not one of yours", 404)
            nxt = db.execute("SELECT MIN(position) FROM trials t WHERE listener=? AND NOT EXISTS "
                             "(SELECT 1 FROM judgements j WHERE j.trial=t.id)", (listener.id,)).fetchone()[0]
            if nxt != own[0]:
                raise Refused(f"trial {trial_id} is answered already or not yet due", 409)
            now = time.time()
            db.executemany("INSERT INTO judgements (trial, listener, design, item, system_a, system_b, "
                           "answer, is_check, elapsed_ms, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                           [(trial_id, listener.id, own[1], own[2], a, b, ans, own[3], elapsed_ms, now)
                            for a, b, ans in rows])

    def judgements(self) -> list[dict]:
        with self.read() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(JUDGEMENTS)]


def read_ratings(path: Path) -> tuple[str, list[dict]]:
    """(the fingerprint of the clips it rated, every judgement as :meth:`Store.judgements`) of a
    ratings file, read without writing to it: what learns from the answers
    (kani_adapt/preference/human.py) opens it read-only."""
    if not Path(path).is_file():
        raise DataError(f"{path}: no listening test here; serve one with `kani-adapt listen` first")
    db = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        found = db.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
        db.row_factory = sqlite3.Row
        return (found[0] if found else ""), [dict(r) for r in db.execute(JUDGEMENTS)]
    except sqlite3.Error as err:
        raise DataError(f"{path}: not a listening test's ratings file ({err})") from None
    finally:
        db.close()


def tally(path: Path) -> tuple[int, int] | None:
    """(listeners who answered, judgements) in a ratings file, read without writing to it;
    None where it cannot be read."""
    db = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT COUNT(DISTINCT listener), COUNT(*) FROM judgements").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()


def _ending(db: sqlite3.Connection) -> tuple[float | None, float | None]:
    found = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('closed', 'expires')").fetchall())
    return tuple(float(found[k]) if k in found else None for k in ("closed", "expires"))


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _trial(row) -> Trial:
    design, item, stimuli, check = row
    return Trial(design, item, tuple(json.loads(stimuli)), bool(check))
