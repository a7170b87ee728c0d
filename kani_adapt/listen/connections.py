"""What uvicorn leaves open for a server on the open internet: a deadline for each request and a
hard cap on open connections, as a thin subclass of its h11 protocol.

uvicorn closes a keep-alive connection that stays silent after a response
(``timeout_keep_alive``), but it arms no timer while a connection is new, and it restarts the
keep-alive timer on every byte received: a client that never finishes its request head (or
sends it a byte at a time, "slowloris") keeps its connection forever. Here every request must
arrive whole, head and body, within ``request_timeout`` of its first byte (of the connection's
opening, for the first request); else the connection is closed. Its ``limit_concurrency``
answers 503 once a request arrives but keeps the connection; here a connection beyond
``max_connections`` is answered 503 and closed at once, so idle sockets cannot pile up.
"""
from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

BUSY = b"too many connections: try again later\n"
WAITING = (h11.IDLE, h11.SEND_BODY)  # the client's side while its request is not in yet


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a per-request deadline and a connection cap (class
    attributes, set by :func:`guarded`)."""

    request_timeout: float = 10.0
    max_connections: int = 200
    busy: bytes = b""  # the whole 503 response, written raw (h11 answers only a request)
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(self.busy)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in WAITING and not self.transport.is_closing():
            self._arm()  # a head or body under way (a new one after a kept-alive response too)
        else:
            self._disarm()  # the request is in: how long the answer takes is not the client's

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded(request_timeout: float, max_connections: int, headers: dict[str, str]) -> type[GuardedH11]:
    """The protocol class for uvicorn's ``http=`` with these limits."""
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    busy = (f"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(BUSY)}\r\nconnection: close\r\n{lines}\r\n").encode("latin-1") + BUSY
    return type("GuardedH11", (GuardedH11,), {"request_timeout": request_timeout,
                                              "max_connections": max_connections, "busy": busy})
