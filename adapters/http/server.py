"""The HTTP adapter: the app served by uvicorn (uvloop + httptools) as a task in the gateway's
own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from adapters.fleet import Fleet
from adapters.http.app import create_app
from adapters.http.read_timeout import timed_request_protocol
from gateway.config import HttpConfig
from gateway.core import Core
from gateway.model import StartError


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway's CLI owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpAdapter:
    """Serves the app with uvicorn as a task in the running loop."""

    name = "http"

    def __init__(self, config: HttpConfig, core: Core, fleet: Fleet | None = None) -> None:
        self._config = config
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None
        self.closing = asyncio.Event()
        """Set when the server begins to stop: endless responses (server-sent events) end."""
        self.app = create_app(config, core, self.closing, fleet)

    async def start(self) -> None:
        self.closing.clear()
        server_config = uvicorn.Config(
            self.app,
            host=self._config.host,
            port=self._config.port,
            http=timed_request_protocol(self._config.read_timeout_s),
            limit_concurrency=self._config.max_connections,
            timeout_keep_alive=5,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        listener = _bind(self._config.host, self._config.port)
        self.port = int(listener.getsockname()[1])
        self._server = _Server(server_config)
        self._task = asyncio.create_task(self._server.serve(sockets=[listener]), name="http")
        for _ in range(500):  # bounded: 5 s
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if not self._server.started:
            listener.close()
            raise RuntimeError(f"HTTP server did not start on {self._config.host}:{self.port}")

    async def stop(self) -> None:
        self.closing.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = None
        self._task = None

    def status(self) -> dict[str, Any]:
        return {"listening": self._server is not None, "host": self._config.host, "port": self.port}


def _bind(host: str, port: int) -> socket.socket:
    """Bind here, so a port in use is a clear error rather than uvicorn's sys.exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        hint = (
            " (another gateway running? `gateway run --port N`, GATEWAY_HTTP_PORT=N or "
            "http.port: N picks another; 0 = any free port)"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        raise StartError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    listener.listen(2048)
    listener.setblocking(False)
    return listener
