"""Hostile clients of the listening server, on raw sockets: request heads that never end (or
end a byte at a time), connections that say nothing, and how long the server keeps each.

``python -m tests.listen.attacks [--tree PATH]`` serves a synthetic eval with the command line
of the tree at PATH (default: this one) and prints what each attack gets, for comparing two
trees on one machine.
"""
from __future__ import annotations

import select
import socket
import time

PARTIAL_HEAD = b"GET /l/not-a-token-1234/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait: "


def _open(port: int, n: int, first: bytes) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if first:
            s.sendall(first)
        s.setblocking(False)
        socks.append(s)
    return socks


def held(port: int, n: int, hold: float, first: bytes = PARTIAL_HEAD, trickle: float = 0.0) -> list[float | None]:
    """Open ``n`` connections, send ``first`` on each (then one more header byte every
    ``trickle`` seconds, if given) and wait up to ``hold`` seconds: the seconds after which the
    server closed each connection, None for those still open."""
    start = time.monotonic()
    socks = _open(port, n, first)
    closed: dict[int, float] = {}
    next_byte = start + trickle if trickle else float("inf")
    while len(closed) < n and time.monotonic() - start < hold:
        live = [s for k, s in enumerate(socks) if k not in closed]
        ready, _, _ = select.select(live, [], [], 0.05)
        for s in ready:
            try:
                data = s.recv(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                closed[socks.index(s)] = time.monotonic() - start
        if time.monotonic() >= next_byte:
            next_byte += trickle
            for k, s in enumerate(socks):
                if k not in closed:
                    try:
                        s.send(b"x")
                    except (BlockingIOError, ConnectionError, OSError):
                        closed[k] = time.monotonic() - start
    for s in socks:
        s.close()
    return [closed.get(k) for k in range(n)]


def raw_exchange(port: int, data: bytes, timeout: float = 30) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it or goes quiet
    for a second after answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        s.settimeout(timeout)
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionError, OSError):
                break
            if not chunk:
                break
            out += chunk
            s.settimeout(1.0)
    return out


def status_of(reply: bytes) -> int | None:
    """The status code of a raw HTTP reply (None: the connection was dropped unanswered)."""
    line = reply.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def post(path: str, body: bytes, host: str = "127.0.0.1", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n").encode() + body


def _main(argv=None) -> None:
    import argparse
    import os
    import re
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from tests.listen.conftest import synthetic_eval

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--hold", type=float, default=30.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        eval_dir = synthetic_eval(Path(tmp))
        proc = subprocess.Popen([sys.executable, "-m", "kani_adapt.cli.main", "listen", str(eval_dir), "--port", "0",
                                 "--listeners", "1"], cwd=args.tree, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONPATH": str(args.tree)})
        try:
            out = ""
            for line in proc.stdout:
                out += line
                if line.startswith("Ctrl-C"):
                    break
            port, tok = re.search(r"127\.0\.0\.1:(\d+)/l/([\w-]+)", out).groups()
            port = int(port)
            report(port, tok, args.hold, eval_dir)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _closed(times: list[float | None], hold: float) -> str:
    done = [t for t in times if t is not None]
    last = f", the last after {max(done):.1f} s" if done else ""
    return f"{len(done)} of {len(times)} closed within {hold:.0f} s{last}"


def report(port: int, tok: str, hold: float, eval_dir) -> None:
    import json
    import sqlite3

    from tests.listen.served import request, valid

    def stored() -> int:
        with sqlite3.connect(eval_dir / "listening.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]

    print(f"20 request heads that never end: {_closed(held(port, 20, hold), hold)}")
    print(f"20 request heads sent a byte a second: {_closed(held(port, 20, hold, trickle=1.0), hold)}")
    print(f"20 connections that send nothing: {_closed(held(port, 20, hold, first=b''), hold)}")
    answer = f"/l/{tok}/answer"

    def good() -> bytes:  # an answer to the listener's next trial
        trial = request(port, "GET", f"/l/{tok}/state")[1]["trial"]
        return json.dumps({"trial": trial["id"], "answer": valid(trial)}).encode()

    chunked = (f"POST {answer} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n").encode()
    for name, data in [("16,000 nested [", lambda: post(answer, b"[" * 16000)),
                       ("a foreign Origin", lambda: post(answer, good(), extra="Origin: http://evil.example\r\n")),
                       ("an unexpected Host", lambda: post(answer, good(), host="evil.example")),
                       ("1 MB chunked", lambda: chunked + b"".join(b"4000\r\n" + b" " * 0x4000 + b"\r\n"
                                                                  for _ in range(64)) + b"0\r\n\r\n")]:
        before = stored()
        status = status_of(raw_exchange(port, data()))
        print(f"{name}: {status or 'connection dropped, no answer'}; judgements written: {stored() - before}")

if __name__ == "__main__":
    _main()
