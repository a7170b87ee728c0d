"""The listening server against clients that do not play along: request heads that never end,
connections that say nothing or too many of them, bodies too big or nested too deep, pages of
other sites and rebound host names. Each is answered (or dropped) within limits, writes
nothing, and leaves the server serving; every response carries the security headers."""
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kani_adapt.listen.server import Limits
from kani_adapt.listen.web import MAX_DEPTH, nesting
from tests.listen.attacks import held, post, raw_exchange, status_of
from tests.listen.served import request, serving, started, token, valid

QUICK = Limits(request_timeout=1.0, idle_timeout=1.0, max_connections=32)
SLACK = 1.5  # seconds a loaded 2-core machine may take beyond a timeout


def _next(port, tok) -> dict:
    return request(port, "GET", f"/l/{tok}/state")[1]["trial"]


def test_request_heads_that_never_end_are_closed_within_the_timeout_and_others_are_served(eval_dir):
    with serving(eval_dir, limits=QUICK) as (app, port):
        tok, hold = token(app, "anna"), QUICK.request_timeout + SLACK
        with ThreadPoolExecutor(3) as pool:  # at once: a head that stops, one that goes on a
            groups = [pool.submit(held, port, 4, hold),  # byte every 0.2 s, a body that stops
                      pool.submit(held, port, 4, hold, trickle=0.2),
                      pool.submit(held, port, 2, hold, post(f"/l/{tok}/answer", b'{"trial": 1, "answer": "A"}')[:-10])]
        for group in groups:
            assert all(t is not None and QUICK.request_timeout * 0.8 <= t for t in group.result()), group.result()
        assert request(port, "GET", f"/l/{tok}/state")[0] == 200
        assert app.store.judgements() == []


def test_silent_connections_are_closed_new_and_after_a_kept_alive_response(eval_dir):
    with serving(eval_dir, limits=QUICK) as (app, port):
        with ThreadPoolExecutor(2) as pool:
            silent = pool.submit(held, port, 4, QUICK.request_timeout + SLACK, first=b"")
            kept = pool.submit(held, port, 2, QUICK.idle_timeout + SLACK,
                               first=f"GET /l/{token(app, 'anna')}/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert all(t is not None for t in silent.result() + kept.result()), (silent.result(), kept.result())


def test_a_connection_beyond_the_limit_gets_a_503_at_once_and_later_ones_are_served(eval_dir):
    limits = Limits(request_timeout=30, idle_timeout=30, max_connections=3)
    with serving(eval_dir, limits=limits) as (app, port):
        import socket

        hogs = [socket.create_connection(("127.0.0.1", port)) for _ in range(limits.max_connections)]
        started = time.monotonic()
        reply = raw_exchange(port, b"GET /l/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=10)
        assert status_of(reply) == 503 and time.monotonic() - started < 5
        assert b"frame-ancestors 'none'" in reply
        for hog in hogs:
            hog.close()
        time.sleep(0.3)
        assert request(port, "GET", f"/l/{token(app, 'anna')}/state")[0] == 200


def test_json_nested_too_deep_is_a_400_and_the_server_goes_on(eval_dir):
    with serving(eval_dir) as (app, port):
        tok = token(app, "anna")
        for body in (b"[" * 16000, b'{"a":' * 3000, b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
                     b'{"trial": 1, "answer": ' + b"[" * 3000 + b"]" * 3000 + b"}"):
            status, reply = request(port, "POST", f"/l/{tok}/answer", raw=body)
            assert status == 400 and "nests deeper" in reply["error"], body[:20]
        trial = _next(port, tok)
        assert request(port, "POST", f"/l/{tok}/answer", {"trial": trial["id"], "answer": valid(trial)})[0] == 200
        assert len({r["trial"] for r in app.store.judgements()}) == 1


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert nesting(b'{"a": "[[[[[[[[", "b": ["]]]\\"[[["]}') == 2
    assert nesting(json.dumps({"answer": {"1": 50}, "t": "{" * 99}).encode()) == 2
    assert nesting(b"[" * 7 + b"]" * 7) == 7


def test_a_huge_body_is_a_413_announced_or_chunked_and_nothing_is_written(eval_dir):
    with serving(eval_dir) as (app, port):
        path = f"/l/{token(app, 'anna')}/answer"
        announced = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {10 ** 9}\r\n\r\n").encode() + b" " * 65536
        chunked = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n").encode() + (b"4000\r\n" + b" " * 0x4000 + b"\r\n") * 64
        assert status_of(raw_exchange(port, announced)) == 413
        assert status_of(raw_exchange(port, chunked + b"0\r\n\r\n")) == 413
        assert app.store.judgements() == []


def test_a_foreign_origin_or_an_unexpected_host_is_refused_and_nothing_is_written(eval_dir):
    with serving(eval_dir) as (app, port):
        tok = token(app, "anna")
        trial = _next(port, tok)
        good = {"trial": trial["id"], "answer": valid(trial)}
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                        {"Origin": f"http://127.0.0.1:{port + 1}"},  # another port is another origin
                        {"Host": "evil.example"}, {"Host": f"rebound.example:{port}"}):
            status, reply = request(port, "POST", f"/l/{tok}/answer", good, headers=headers)
            assert status == 403 and reply["error"], headers
        assert request(port, "GET", f"/l/{tok}/state", headers={"Host": "evil.example"})[0] == 403
        assert app.store.judgements() == []
        # the page's own origin, by address and by name
        assert request(port, "POST", f"/l/{tok}/answer", good,
                       headers={"Origin": f"http://127.0.0.1:{port}"})[0] == 200
        trial = _next(port, tok)
        assert request(port, "POST", f"/l/{tok}/answer", {"trial": trial["id"], "answer": valid(trial)},
                       headers={"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"})[0] == 200
        assert len(app.store.judgements()) >= 2


def _secured(headers) -> None:
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_every_response_carries_the_security_headers_errors_included(eval_dir, monkeypatch):
    with serving(eval_dir) as (app, port):
        tok = token(app, "anna")
        got = {}
        for want, args in [(200, ("GET", f"/l/{tok}")), (200, ("GET", "/static/app.js")),
                           (404, ("GET", "/eval.json")), (400, ("POST", f"/l/{tok}/answer", None, b"{x")),
                           (403, ("GET", f"/l/{tok}/state", None, None, {"Host": "evil.example"})),
                           (413, ("POST", f"/l/{tok}/answer", None, b" " * 20000))]:
            status, _, headers = request(port, *args, full=True)
            got[status] = headers
            assert status == want, args
        monkeypatch.setattr(type(app), "state", lambda self, listener: 1 / 0)  # a bug
        status, body, got[500] = request(port, "GET", f"/l/{tok}/state", full=True)
        assert status == 500 and b"ZeroDivision" not in body
        app.store.close()
        status, _, got[410] = request(port, "GET", f"/l/{tok}/state", full=True)
        assert status == 410
        for headers in got.values():
            _secured(headers)
        assert b"<script>" not in request(port, "GET", f"/l/{tok}")[1]  # no inline script to allow


@pytest.mark.slow
def test_the_command_closes_slow_heads_and_silent_connections_at_its_default_timeout(eval_dir):
    """The defaults a user gets, through the real command line: 20 heads that stop, 5 that go
    on a byte a second, 5 connections that say nothing, all at once."""
    hold = Limits().request_timeout + 5
    with started(eval_dir) as (links, _, _), ThreadPoolExecutor(3) as pool:
        port = links[0][2]
        groups = [pool.submit(held, port, 20, hold), pool.submit(held, port, 5, hold, trickle=1.0),
                  pool.submit(held, port, 5, hold, first=b"")]
        times = [t for g in groups for t in g.result()]
        assert request(port, "GET", f"/l/{links[0][3]}/state")[0] == 200
    assert all(t is not None for t in times), times


def test_the_deadline_covers_the_request_not_the_time_the_answer_takes(eval_dir, monkeypatch):
    with serving(eval_dir, limits=QUICK) as (app, port):
        tok = token(app, "anna")
        slow_state = type(app).state

        def state(self, listener):
            time.sleep(QUICK.request_timeout * 1.5)  # a slow disk, a busy machine
            return slow_state(self, listener)

        monkeypatch.setattr(type(app), "state", state)
        for close in ("", "Connection: close\r\n"):  # h11 ends a closing request differently
            reply = raw_exchange(port, f"GET /l/{tok}/state HTTP/1.1\r\nHost: 127.0.0.1\r\n{close}\r\n".encode())
            assert status_of(reply) == 200, (close, reply[:80])
