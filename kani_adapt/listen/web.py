"""The listening app over HTTP (a Starlette app): its routes, what a request may carry, the Host
and Origin checks and the security headers of every response.

Routes (TOKEN is a listener's invite token; nothing else opens anything):

    GET  /l/TOKEN                      the page (intro, trials, progress)
    GET  /l/TOKEN/state                the listener's progress and next trial (slots, no systems)
    GET  /l/TOKEN/audio/TRIAL/SLOT     a stimulus of one of the listener's own trials (WAV)
    POST /l/TOKEN/answer               {"trial": id, "answer": ..., "elapsed_ms": n}
    GET  /static/app.js, app.css       the page's script and style (no inline script or style)

Audio is found through the listener's own stored trials, never through a path in the URL, so
every other URL (a traversal, another listener's trial, an unknown token) is a 404. There is no
route that returns ratings. Once the test is closed or its links have expired, a token's routes
answer 410 (the page too, which then shows why).

Every request must name this server in its Host (a rebinding DNS name does not), and a request
that changes something must not come from a page of another origin (a browser says which in
``Origin``): else 403 and nothing is read or written. An answer is at most ``MAX_BODY`` bytes
(413) of JSON nested at most ``MAX_DEPTH`` deep (400: the parser recurses, 16,000 ``[`` would
exhaust Python's stack).
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kani_adapt.listen.store import Refused

HERE = Path(__file__).parent
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
MAX_BODY = 16 * 1024
MAX_DEPTH = 4  # an answer is {"answer": {"1": 50, ...}}: two levels
SLOT = re.compile(r"A|B|ref|\d{1,3}")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY",
           "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin"}
_ENCODED = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
_OURS = {k for k, _ in _ENCODED}


@dataclass(frozen=True)
class Hosts:
    """The names this server answers to in a request's Host (lower case, no port); with
    ``any_address`` (bound to every interface) any IP address too: a page reached by address is
    not a rebound DNS name."""
    names: frozenset[str]
    any_address: bool = False

    def allow(self, host: str) -> bool:
        try:
            name = urlsplit(f"//{host}").hostname or ""
        except ValueError:
            return False
        if name in self.names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return self.any_address


def nesting(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets in strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


def read_json(raw: bytes):
    if nesting(raw) > MAX_DEPTH:
        raise Refused(f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise Refused("the body is not JSON") from None


def refusal(headers: Headers, method: str, hosts: Hosts) -> str | None:
    """Why a request is refused before it is routed (403), or None."""
    host = headers.get("host", "")
    if not hosts.allow(host):
        return "this server does not answer to that Host"
    origin = headers.get("origin")
    if method not in ("GET", "HEAD") and origin is not None and urlsplit(origin).netloc.lower() != host.lower():
        return "a page of another origin may not send answers here"
    return None


class Checked:
    """ASGI middleware: the Host and Origin checks."""

    def __init__(self, app, hosts: Hosts):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            reason = refusal(Headers(scope=scope), scope["method"], self.hosts)
            if reason is not None:
                return await JSONResponse({"error": reason}, 403)(scope, receive, send)
        await self.app(scope, receive, send)


class Secured:
    """ASGI wrapper: the security headers on every response, errors and 500s included."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        async def send_secured(message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _OURS]
                message = {**message, "headers": kept + _ENCODED}
            await send(message)

        await self.app(scope, receive, send_secured)


class Endpoints:
    """The routes' handlers over a :class:`kani_adapt.listen.server.App` (whose calls, SQLite
    and audio, run in the thread pool)."""

    def __init__(self, app):
        self.app = app
        self.page = (HERE / "app.html").read_bytes()
        self.static = {name: ((HERE / name).read_bytes(), kind) for name, kind in STATIC.items()}

    async def listener(self, request: Request):
        return await run_in_threadpool(self.app.listener, request.path_params["token"])

    async def show_page(self, request: Request) -> Response:
        try:
            await self.listener(request)
        except Refused as err:
            if err.status != 410:
                raise
            return Response(self.page, 410, media_type="text/html; charset=utf-8")  # the page says why
        return Response(self.page, media_type="text/html; charset=utf-8")

    async def state(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self.app.state, await self.listener(request)))

    async def audio(self, request: Request) -> Response:
        who, slot = await self.listener(request), request.path_params["slot"]
        wav = None
        if SLOT.fullmatch(slot):
            wav = await run_in_threadpool(self.app.audio, who, request.path_params["trial"], slot)
        if wav is None:
            raise HTTPException(404)
        return Response(wav, media_type="audio/wav")

    async def answer(self, request: Request) -> Response:
        who = await self.listener(request)
        try:
            body = read_json(await request.body())
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        return JSONResponse(await run_in_threadpool(self.app.answer, who, body))

    async def asset(self, request: Request) -> Response:
        body, kind = self.static.get(request.path_params["name"], (None, ""))
        if body is None:
            raise HTTPException(404)
        return Response(body, media_type=kind)


async def _refused(request: Request, err: Refused) -> Response:
    return JSONResponse({"error": str(err)}, err.status)


async def _http_error(request: Request, err: HTTPException) -> Response:
    if err.status_code == 413:  # Starlette's body limit; the rest of the body is not read
        return JSONResponse({"error": f"a body of at most {MAX_BODY} bytes"}, 413, headers={"Connection": "close"})
    return JSONResponse({"error": "not found"}, 404)  # 405 too: every other URL is a 404


def asgi(app, hosts: Hosts):
    """The ASGI app of a :class:`kani_adapt.listen.server.App`."""
    e = Endpoints(app)
    routes = [Route("/l/{token}", e.show_page), Route("/l/{token}/", e.show_page),
              Route("/l/{token}/state", e.state),
              Route("/l/{token}/audio/{trial:int}/{slot}", e.audio),
              Route("/l/{token}/answer", e.answer, methods=["POST"], max_body_size=MAX_BODY),
              Route("/static/{name}", e.asset)]
    inner = Starlette(routes=routes, exception_handlers={Refused: _refused, HTTPException: _http_error})
    inner.router.redirect_slashes = False
    return Secured(Checked(inner, hosts))
