"""A listening test ends: closed (``--close``, or by ``--results``) or past its ``--expires``
date. From then on every answer gets 410 and writes nothing, the published results stay what
they are, and the command will not serve the test again."""
import threading
import time

import pytest

from kani_adapt.cli.listen_command import _expiry
from kani_adapt.cli.main import main
from kani_adapt.listen.design import PlanSettings
from tests.listen.served import request, serving, token, valid

AB_MUSHRA = PlanSettings(designs=("ab", "mushra"))
PUBLISHED = ("listening.json", "eval.md", "index.html")


def _answer(port, tok, k: int) -> int:
    """Answer the listener's next ``k`` trials; the status of the last answer."""
    status = None
    for _ in range(k):
        status, state = request(port, "GET", f"/l/{tok}/state")
        if status != 200 or not state["trial"]:
            return status
        trial = state["trial"]
        status, _ = request(port, "POST", f"/l/{tok}/answer", {"trial": trial["id"], "answer": valid(trial)})
    return status


def test_results_close_the_test_later_answers_get_410_and_the_published_figures_stay(eval_dir, capsys):
    results = ["listen", str(eval_dir), "--results", "--resamples", "100", "--keep-all"]
    with serving(eval_dir, settings=AB_MUSHRA) as (app, port):
        anna, ben = token(app, "anna"), token(app, "ben")
        assert _answer(port, anna, 5) == 200 and _answer(port, ben, 3) == 200
        trial = request(port, "GET", f"/l/{anna}/state")[1]["trial"]
        assert main(results) == 0
        first = {name: (eval_dir / name).read_bytes() for name in PUBLISHED}
        assert "The test was closed on" in capsys.readouterr().out
        stored = app.store.judgements()
        status, body = request(port, "POST", f"/l/{anna}/answer", {"trial": trial["id"], "answer": valid(trial)})
        assert status == 410 and "closed" in body["error"]
        for path in (f"/l/{ben}/state", f"/l/{anna}/audio/{trial['id']}/{trial['slots'][0]}"):
            assert request(port, "GET", path)[0] == 410
        status, page = request(port, "GET", f"/l/{anna}")
        assert status == 410 and b"app.js" in page  # the page, which shows why
        assert app.store.judgements() == stored
    assert main(results) == 0
    assert {name: (eval_dir / name).read_bytes() for name in PUBLISHED} == first
    capsys.readouterr()
    assert main(["listen", str(eval_dir), "--port", "0"]) == 2  # restarting serves nothing
    err = capsys.readouterr().err
    assert "closed on" in err and "move the file away" in err and len(err.strip().splitlines()) == 1


def test_answers_racing_a_close_are_either_acknowledged_and_kept_or_refused_and_nowhere(eval_dir, capsys):
    names = [f"l{k}" for k in range(6)]
    acked, refused, errors = [], [], []

    def listener(port, tok):
        try:
            while True:
                status, state = request(port, "GET", f"/l/{tok}/state")
                if status == 200:  # once closed, the page still sends what it shows
                    if not state["trial"]:
                        return
                    trial = state["trial"]
                status, _ = request(port, "POST", f"/l/{tok}/answer", {"trial": trial["id"], "answer": valid(trial)})
                (acked if status == 200 else refused).append((tok, trial["id"], status))
                if status == 410:
                    return
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    with serving(eval_dir, listeners=names, settings=AB_MUSHRA) as (app, port):
        threads = [threading.Thread(target=listener, args=(port, token(app, n))) for n in names]
        for t in threads:
            t.start()
        while len(acked) < 20:
            time.sleep(0.02)
        assert main(["listen", str(eval_dir), "--close"]) == 0
        for t in threads:
            t.join(timeout=60)
        stored = {(r["listener"], r["trial"]) for r in app.store.judgements()}
        ids = {l.token: l.id for l in app.store.listeners()}
    assert not errors and len(refused) == len(names) and all(status == 410 for _, _, status in refused)
    assert stored == {(ids[tok], trial) for tok, trial, _ in acked}
    assert "Later answers get 410" in capsys.readouterr().out


def test_links_expire_at_the_given_time(eval_dir, capsys):
    with serving(eval_dir) as (app, port):
        tok = token(app, "anna")
        app.store.expire_at(time.time() + 1.5)
        assert _answer(port, tok, 1) == 200
        time.sleep(max(0.0, app.store.ending()[1] - time.time()) + 0.1)
        status, body = request(port, "GET", f"/l/{tok}/state")
        assert status == 410 and "ended on" in body["error"]
        trial = app.store.trials(app.store.listeners()[0])[1]
        assert request(port, "POST", f"/l/{tok}/answer", {"trial": trial.id, "answer": "A"})[0] == 410
        assert len({r["trial"] for r in app.store.judgements()}) == 1
    assert main(["listen", str(eval_dir), "--port", "0"]) == 2
    assert "give a later --expires" in capsys.readouterr().err


def test_an_expiry_date_means_through_that_day():
    end = _expiry("2099-12-31")
    assert time.localtime(end)[:6] == (2100, 1, 1, 0, 0, 0)
    assert time.localtime(_expiry("2099-12-31T18:30"))[:5] == (2099, 12, 31, 18, 30)


@pytest.mark.parametrize("args, message", [
    (["--expires", "2000-01-01"], "past already"),
    (["--expires", "31/12/2099"], "YYYY-MM-DD"),
    (["--max-connections", "0"], "--max-connections"),
])
def test_bad_serving_options_end_in_one_line(eval_dir, capsys, args, message):
    assert main(["listen", str(eval_dir), "--port", "0", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flag", ["--close", "--results"])
def test_closing_a_test_that_was_never_served_is_one_line(eval_dir, capsys, flag):
    assert main(["listen", str(eval_dir), flag]) == 2
    assert "no listening test here yet" in capsys.readouterr().err
    assert not (eval_dir / "listening.sqlite").exists()
