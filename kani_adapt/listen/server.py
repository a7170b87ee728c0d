"""The listening web app on the standard library's threaded HTTP server.

Routes (TOKEN is a listener's invite token; nothing else opens anything):

    GET  /l/TOKEN                      the page (intro, trials, progress)
    GET  /l/TOKEN/state                the listener's progress and next trial (slots, no systems)
    GET  /l/TOKEN/audio/TRIAL/SLOT     a stimulus of one of the listener's own trials (WAV)
    POST /l/TOKEN/answer               {"trial": id, "answer": ..., "elapsed_ms": n}

Audio is found through the listener's own stored trials, never through a path in the URL, so
every other URL (a traversal, another listener's trial, an unknown token) is a 404. There is no
route that returns ratings.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kani_adapt.listen import answers
from kani_adapt.listen.design import PlanSettings, plan
from kani_adapt.listen.material import Material
from kani_adapt.listen.playback import Playback
from kani_adapt.listen.store import Listener, Refused, Store

PAGE = Path(__file__).with_name("app.html")
MAX_BODY = 16 * 1024
TOKEN = r"([A-Za-z0-9_-]{8,64})"
ROUTES = {
    ("GET", re.compile(rf"/l/{TOKEN}/?")): "page",
    ("GET", re.compile(rf"/l/{TOKEN}/state")): "state",
    ("GET", re.compile(rf"/l/{TOKEN}/audio/(\d{{1,12}})/(A|B|ref|\d{{1,3}})")): "audio",
    ("POST", re.compile(rf"/l/{TOKEN}/answer")): "answer",
}
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                      "style-src 'unsafe-inline'; media-src 'self'"}


@dataclass
class App:
    material: Material
    store: Store
    playback: Playback
    settings: PlanSettings

    def trials(self, listener: Listener):
        return self.store.ensure_plan(
            listener, lambda counts: plan(self.material, self.settings, listener.seed, counts))

    def state(self, listener: Listener) -> dict:
        trials = self.trials(listener)
        done = self.store.answered(listener)
        nxt = next((t for t in trials if t.id not in done), None)
        shown = None
        if nxt is not None:
            shown = {"id": nxt.id, **answers.describe(nxt.trial, self.material)}
        return {"listener": listener.name, "done": len(done), "total": len(trials), "trial": shown,
                "designs": sorted({t.trial.design for t in trials})}

    def audio(self, listener: Listener, trial_id: int, slot: str) -> bytes | None:
        trial = next((t.trial for t in self.trials(listener) if t.id == trial_id), None)
        system = answers.system_of(trial, slot) if trial else None
        return None if system is None else self.playback.wav(system, trial.item)

    def answer(self, listener: Listener, body: dict) -> dict:
        if not isinstance(body, dict) or set(body) - {"trial", "answer", "elapsed_ms"} or "trial" not in body:
            raise Refused("send {trial, answer, elapsed_ms} and nothing else")
        trial_id = body["trial"]
        if isinstance(trial_id, bool) or not isinstance(trial_id, int):
            raise Refused("trial must be a trial id")
        trial = next((t.trial for t in self.trials(listener) if t.id == trial_id), None)
        if trial is None:
            raise Refused(f"trial {trial_id} is not one of yours", 404)
        rows = answers.judgement_rows(trial, body.get("answer"))
        self.store.record(listener, trial_id, rows, answers.elapsed(body.get("elapsed_ms", 0)))
        return self.state(listener)


def handler(app: App):
    class Handler(BaseHTTPRequestHandler):
        server_version = "kani-adapt-listen"
        sys_version = ""

        def log_message(self, *args) -> None:  # the console stays quiet
            pass

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for key, value in HEADERS.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, value) -> None:
            self._send(status, json.dumps(value).encode(), "application/json")

        def _route(self, method: str):
            path = self.path.split("?", 1)[0]
            for (m, pattern), name in ROUTES.items():
                match = pattern.fullmatch(path)
                if m == method and match:
                    listener = app.store.by_token(match.group(1))
                    if listener is not None:
                        return name, listener, match.groups()[1:]
            return None, None, ()

        def _not_found(self) -> None:
            self._json(404, {"error": "not found"})

        def do_GET(self) -> None:
            name, listener, args = self._route("GET")
            if name == "page":
                self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
            elif name == "state":
                self._json(200, app.state(listener))
            elif name == "audio":
                wav = app.audio(listener, int(args[0]), args[1])
                self._send(200, wav, "audio/wav") if wav is not None else self._not_found()
            else:
                self._not_found()

        def do_POST(self) -> None:
            name, listener, _ = self._route("POST")
            if name != "answer":
                return self._not_found()
            length = self.headers.get("Content-Length") or "0"
            if not length.isdigit() or int(length) > MAX_BODY:
                return self._json(413, {"error": f"a body of at most {MAX_BODY} bytes"})
            try:
                body = json.loads(self.rfile.read(int(length)) or b"null")
            except ValueError:
                return self._json(400, {"error": "the body is not JSON"})
            try:
                self._json(200, app.answer(listener, body))
            except Refused as err:
                self._json(err.status, {"error": str(err)})

    return Handler


def make_server(app: App, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), handler(app))
    server.daemon_threads = True
    return server
