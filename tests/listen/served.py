"""A listening app served from a thread on 127.0.0.1 (any free port), and a tiny HTTP client."""
from __future__ import annotations

import http.client
import json
import threading
from contextlib import contextmanager
from pathlib import Path

from kani_adapt.listen.design import PlanSettings
from kani_adapt.listen.material import load_material
from kani_adapt.listen.playback import Playback
from kani_adapt.listen.server import App, make_server
from kani_adapt.listen.store import FILE, Store


@contextmanager
def serving(eval_dir: Path, listeners=("anna", "ben"), settings: PlanSettings = PlanSettings()):
    material = load_material([eval_dir])
    store = Store(eval_dir / FILE, material.fingerprint())
    for name in listeners:
        store.add_listener(name)
    app = App(material, store, Playback(material), settings)
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def request(port: int, method: str, path: str, body=None, raw: bytes | None = None):
    """(status, parsed JSON or bytes) of one request; ``path`` goes out exactly as given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    if resp.getheader("Content-Type", "").startswith("application/json"):
        return resp.status, json.loads(payload)
    return resp.status, payload


def token(app: App, name: str) -> str:
    return next(l.token for l in app.store.listeners() if l.name == name)
