"""The listening command under a panel: 40 listeners at once, each on a kept-alive connection of
its own as a browser would (state, a stimulus, an answer per trial), and a kill -9 in the middle.
Every answer the server acknowledged is stored once; nothing is stored twice."""
import http.client
import json
import os
import signal
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.listen.served import started, valid

pytestmark = pytest.mark.slow
PANEL = 40
ARGS = ("--listeners", str(PANEL), "--per-design", "10")  # 40 trials per listener


class Listener:
    """One listener's client: answers trial after trial until done, refused or cut off."""

    def __init__(self, port: int, tok: str, acked: list, stop: threading.Event):
        self.port, self.tok, self.acked, self.stop = port, tok, acked, stop
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def _call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, f"/l/{self.tok}{path}", body=data,
                          headers={"Content-Type": "application/json"} if data else {})
        resp = self.conn.getresponse()
        payload = resp.read()
        return resp.status, (json.loads(payload) if resp.getheader("Content-Type", "").startswith("application/json")
                             else payload)

    def run(self) -> bool:
        """True once every trial is answered; False when stopped or the server went away."""
        try:
            while not self.stop.is_set():
                status, state = self._call("GET", "/state")
                assert status == 200, (status, state)
                trial = state["trial"]
                if trial is None:
                    return True
                status, wav = self._call("GET", f"/audio/{trial['id']}/{trial['slots'][0]}")
                assert status == 200 and wav[:4] == b"RIFF"
                status, _ = self._call("POST", "/answer", {"trial": trial["id"], "answer": valid(trial),
                                                          "elapsed_ms": 500})
                assert status == 200, status
                self.acked.append((self.tok, trial["id"]))
        except (ConnectionError, http.client.HTTPException, OSError):
            return False
        finally:
            self.conn.close()
        return False


def _panel(links, acked: list, stop: threading.Event) -> list[bool]:
    with ThreadPoolExecutor(len(links)) as pool:
        return list(pool.map(lambda link: Listener(link[2], link[3], acked, stop).run(), links))


def _stored(eval_dir) -> list[tuple[str, int]]:
    with sqlite3.connect(eval_dir / "listening.sqlite") as db:
        return db.execute("SELECT DISTINCT l.token, j.trial FROM judgements j "
                          "JOIN listeners l ON l.id = j.listener").fetchall()


def _planned(eval_dir) -> int:
    with sqlite3.connect(eval_dir / "listening.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM trials").fetchone()[0]


def _one_row_per_judgement(eval_dir) -> bool:
    """As many judgement rows as the answered trials hold judgements (a MUSHRA page one per
    slot): none written twice."""
    with sqlite3.connect(eval_dir / "listening.sqlite") as db:
        rows = db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]
        answered = db.execute("SELECT design, stimuli FROM trials WHERE id IN (SELECT trial FROM judgements)")
        return rows == sum(len(json.loads(stimuli)) if design == "mushra" else 1 for design, stimuli in answered)


def test_forty_listeners_at_once_have_every_acknowledged_answer_stored_once(eval_dir):
    acked: list = []
    with started(eval_dir, *ARGS) as (links, _, proc):
        assert len(links) == PANEL
        finished = _panel(links, acked, threading.Event())
    assert all(finished) and proc.returncode == 0
    stored = _stored(eval_dir)
    assert len(acked) == len(set(acked)) == _planned(eval_dir) == PANEL * 40
    assert sorted(stored) == sorted(acked) and _one_row_per_judgement(eval_dir)


def test_a_kill_9_under_load_loses_no_acknowledged_answer_and_the_panel_finishes_after_a_restart(eval_dir):
    acked: list = []
    stop = threading.Event()
    with started(eval_dir, *ARGS) as (links, _, proc):
        killer = threading.Thread(target=lambda: (_wait_for(acked, 300), os.kill(proc.pid, signal.SIGKILL)))
        killer.start()
        finished = _panel(links, acked, stop)
        killer.join()
    assert not any(finished) and proc.returncode == -signal.SIGKILL
    before = set(_stored(eval_dir))
    assert set(acked) <= before and _one_row_per_judgement(eval_dir)  # acknowledged means stored
    with started(eval_dir, *ARGS) as (again, _, proc):
        assert [link[3] for link in again] == [link[3] for link in links]  # the same invites
        links = again
        assert all(_panel(links, acked, stop))
    stored = _stored(eval_dir)
    assert len(stored) == len(set(stored)) == _planned(eval_dir) == PANEL * 40, (len(stored), _planned(eval_dir))
    assert set(acked) <= set(stored) and before <= set(stored) and _one_row_per_judgement(eval_dir)


def _wait_for(acked: list, n: int) -> None:
    import time

    while len(acked) < n:
        time.sleep(0.01)
