"""Run an ASGI app with uvicorn on 127.0.0.1 and announce `READY <port>` once it accepts connections.

The socket is bound before uvicorn starts, so `--port 0` works and the announced port is the real one;
the line is printed only after the app's lifespan startup finished, so a test that reads it can connect at once.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

LOOPBACK = "127.0.0.1"


def bind_loopback(port: int) -> socket.socket:
    """Bind and listen on 127.0.0.1:`port` (0 picks a free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls `on_ready` once its sockets accept connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()


def announce_ready(port: int) -> None:
    """Write the one line the test fixtures wait for."""
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()


def build_server(
    app: ASGIApp,
    on_ready: Callable[[], None],
    log_level: str = "warning",
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> uvicorn.Server:
    """A uvicorn server for `app` that does not linger on shutdown (open SSE streams are cut after 1 s);
    with `certfile` (and `keyfile`), it serves https."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        timeout_graceful_shutdown=1,
        lifespan="auto",
        access_log=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    return _AnnouncingServer(config, on_ready)


def serve_forever(
    app: ASGIApp,
    port: int,
    log_level: str = "warning",
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    """Serve `app` on 127.0.0.1:`port` until SIGINT/SIGTERM, printing `READY <port>` when listening."""
    sock = bind_loopback(port)
    bound_port = sock.getsockname()[1]
    server = build_server(
        app, lambda: announce_ready(bound_port), log_level, certfile=certfile, keyfile=keyfile
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
