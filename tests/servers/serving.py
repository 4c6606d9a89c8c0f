"""What every test server shares: its command line (`--port`, 0 for a free one), serving an ASGI app with
uvicorn on 127.0.0.1 and announcing `READY <port>` once it accepts connections, and the ASGI plumbing of
the small middlewares (read a request body, hand it on, answer a plain response).

The socket is bound before uvicorn starts, so `--port 0` works and the announced port is the real one (an
app that must name its own URL is built knowing it: `serve_on_port`); the line is printed only after the
app's lifespan startup finished, so a test that reads it (`tests/peers.py`) can connect at once. Each server
module states only what differs: its app and its own options.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable, Iterable

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Send

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


def server_arguments(module: str, description: str | None) -> argparse.ArgumentParser:
    """The command line of `python -m <module>`: `--port` (0 picks a free port); a server adds its own."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (announced as READY <port>)")
    return parser


def serve_on_port(
    app_for_port: Callable[[int], ASGIApp],
    port: int,
    log_level: str = "warning",
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    """Bind 127.0.0.1:`port`, build the app for the port actually bound (an app that names its own URL needs
    it), serve it until SIGINT/SIGTERM and print `READY <port>` once it listens."""
    sock = bind_loopback(port)
    bound_port = sock.getsockname()[1]
    server = build_server(
        app_for_port(bound_port),
        lambda: announce_ready(bound_port),
        log_level,
        certfile=certfile,
        keyfile=keyfile,
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def serve_forever(
    app: ASGIApp,
    port: int,
    log_level: str = "warning",
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> None:
    """Serve `app` on 127.0.0.1:`port` until SIGINT/SIGTERM, printing `READY <port>` when listening."""
    serve_on_port(lambda _port: app, port, log_level, certfile=certfile, keyfile=keyfile)


# ---- ASGI plumbing for the middlewares ------------------------------------------------------------------------


async def read_body(receive: Receive) -> bytes:
    """The whole body of an HTTP request (every `http.request` message until `more_body` is false)."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the app `body` (already read) first, then whatever `receive` brings."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def reply(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "text/plain",
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """A complete response with a body (its length given)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *headers,
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
