"""A listening app served from a thread on 127.0.0.1 (any free port), and a tiny HTTP client."""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from kani_adapt.listen.design import PlanSettings
from kani_adapt.listen.material import load_material
from kani_adapt.listen.playback import Playback
from kani_adapt.listen.server import App, Limits, make_server
from kani_adapt.listen.store import FILE, Store

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(https?)://([\w.-]+|\[[0-9a-f:]+\]):(\d+)/l/([\w-]+)")


@contextmanager
def serving(eval_dir: Path, listeners=("anna", "ben"), settings: PlanSettings = PlanSettings(),
            limits: Limits = Limits(), **tls):
    material = load_material([eval_dir])
    store = Store(eval_dir / FILE, material.fingerprint())
    for name in listeners:
        store.add_listener(name)
    app = App(material, store, Playback(material), settings)
    server = make_server(app, "127.0.0.1", 0, limits, **tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, server.server_address[1]
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def request(port: int, method: str, path: str, body=None, raw: bytes | None = None,
            headers: dict | None = None, tls: ssl.SSLContext | None = None, full: bool = False):
    """(status, parsed JSON or bytes) of one request (with ``full``: and the response headers);
    ``path`` goes out exactly as given."""
    if tls is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=tls)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = {"Content-Type": "application/json"} if data else {}
    conn.request(method, path, body=data, headers={**sent, **(headers or {})})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    if resp.getheader("Content-Type", "").startswith("application/json"):
        payload = json.loads(payload)
    return (resp.status, payload, resp.headers) if full else (resp.status, payload)


def valid(trial: dict):
    """An answer the server takes for a trial as the page sees it."""
    return {"ab": "A", "cmos": 1, "accent": 4, "intelligibility": "the bus leaves at nine",
            "mushra": {s: 50 for s in trial["slots"]}}[trial["design"]]


def token(app: App, name: str) -> str:
    return next(l.token for l in app.store.listeners() if l.name == name)


@contextmanager
def started(eval_dir: Path, *args: str):
    """``kani-adapt listen EVAL_DIR --port 0 ARGS`` in a process of its own, until it printed its
    links: yields (links as (scheme, host, port, token), what it printed so far, the process);
    then Ctrl-C (its stderr and the rest of its output are on ``proc.rest``)."""
    proc = subprocess.Popen([sys.executable, "-m", "kani_adapt.cli.main", "listen", str(eval_dir), "--port", "0",
                             *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        links = [(m[0], m[1], int(m[2]), m[3]) for m in LINK.findall("".join(lines))]
        yield links, lines, proc
    finally:
        proc.send_signal(signal.SIGINT)
        proc.rest = proc.communicate(timeout=60)[0]
