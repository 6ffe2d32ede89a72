"""A bound on how long a client may take to send its request (slowloris).

uvicorn closes idle keep-alive connections but waits forever for the rest of a request whose
headers or body trickle in. This protocol starts a clock when a connection opens and again when
each request begins, and closes the connection if the whole request (headers and body) is not
in by then. Handlers that take long (a job waiting for its result, the event stream) are not
affected: the clock stops once the request has arrived.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _TimedRequestProtocol(HttpToolsProtocol):
    read_timeout_s = 10.0
    _read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(self.read_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def timed_request_protocol(read_timeout_s: float) -> Any:
    """The httptools protocol class with this bound on reading a request."""
    return type(
        "TimedRequestProtocol", (_TimedRequestProtocol,), {"read_timeout_s": read_timeout_s}
    )
