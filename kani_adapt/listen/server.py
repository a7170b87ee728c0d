"""The listening app and its server: uvicorn (ASGI, h11) serving the Starlette app of
:mod:`kani_adapt.listen.web`, through the guards of :mod:`kani_adapt.listen.connections`.

What a server on the open internet needs, and where it comes from: a request (head and body)
must arrive within ``request_timeout`` of its first byte (the guard: uvicorn has no such
timer), a kept-alive connection that stays silent is closed after ``idle_timeout`` (uvicorn),
at most ``max_connections`` are open at once (the guard closes the next one with a 503;
uvicorn answers 503 to requests beyond it), a request head is at most 16 KiB (h11), an answer
at most 16 KiB (Starlette) of JSON nested at most 4 deep (:mod:`web`), TLS with a certificate
and key (uvicorn; an unfinished TLS handshake is dropped after asyncio's 60 s). Requests run
in Starlette's thread pool: a slow client holds a coroutine, never a thread.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kani_adapt.listen import answers
from kani_adapt.listen.design import PlanSettings, plan
from kani_adapt.listen.material import Material
from kani_adapt.listen.playback import Playback
from kani_adapt.listen.store import Listener, Refused, Store

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Limits:
    request_timeout: float = 10.0  # seconds for a request to arrive whole, head and body
    idle_timeout: float = 5.0  # a kept-alive connection silent this long is closed
    max_connections: int = 200  # open at once; the next one gets a 503 and is closed


@dataclass
class App:
    material: Material
    store: Store
    playback: Playback
    settings: PlanSettings

    def listener(self, token: str) -> Listener:
        """The listener of an invite token: Refused 404 for none, 410 once the test is closed
        or its links have expired."""
        listener = self.store.by_token(token)
        if listener is None:
            raise Refused("not found", 404)
        reason = self.store.closed()
        if reason:
            raise Refused(reason, 410)
        return listener

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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hosts_for(host: str, url: str = ""):
    """The names a request's Host may give: loopback, the bound address, the host of ``url``
    (the address in the invite links) and, bound to every interface, this machine's name and
    any IP address."""
    from kani_adapt.listen.web import Hosts

    wildcard = host in ("", "0.0.0.0", "::")
    names = set(LOOPBACK_NAMES) | {socket.gethostname().lower() if wildcard else host.lower()}
    if url:
        names.add((urlsplit(url).hostname or "").lower())
    return Hosts(frozenset(names - {""}), any_address=wildcard)


class ListeningServer:
    """The app served by uvicorn on a socket bound at once (port 0: any free one); HTTPS with a
    PEM ``certfile`` and its ``keyfile`` (ssl.SSLError or OSError here when they are not)."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 8765, limits: Limits = Limits(),
                 certfile: Path | None = None, keyfile: Path | None = None, url: str = ""):
        import uvicorn

        from kani_adapt.listen.connections import guarded
        from kani_adapt.listen.web import HEADERS, asgi

        self.tls = certfile is not None
        self.beyond_loopback = not is_loopback(host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family)
        config = uvicorn.Config(
            asgi(app, hosts_for(host, url)), http=guarded(limits.request_timeout, limits.max_connections, HEADERS),
            ws="none", lifespan="off", loop="asyncio", interface="asgi3", log_config=None, access_log=False,
            server_header=False, proxy_headers=False, timeout_keep_alive=limits.idle_timeout,
            limit_concurrency=limits.max_connections + 1, h11_max_incomplete_event_size=16 * 1024,
            timeout_graceful_shutdown=5, ssl_certfile=certfile, ssl_keyfile=keyfile)
        try:
            config.load()  # reads the certificate now: a bad one is an error before serving
        except BaseException:
            self.socket.close()
            raise
        logging.getLogger("uvicorn.error").setLevel(logging.ERROR)  # a bug's traceback, not every bad request
        self._server = uvicorn.Server(config)

    @property
    def server_address(self) -> tuple[str, int]:
        return self.socket.getsockname()[:2]

    def serve_forever(self) -> None:
        self._server.run(sockets=[self.socket])

    def shutdown(self) -> None:
        self._server.should_exit = True

    def server_close(self) -> None:
        self.socket.close()


def make_server(app: App, host: str = "127.0.0.1", port: int = 8765, limits: Limits = Limits(),
                **tls) -> ListeningServer:
    return ListeningServer(app, host, port, limits, **tls)
