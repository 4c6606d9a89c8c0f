"""A 2026-07-28-only MCP server: the SDK's dual-era server behind a filter that refuses the handshake era.

Handshake-era traffic (a POST whose JSON-RPC request carries no `io.modelcontextprotocol/protocolVersion`
in `_meta`, any notification, GET and DELETE) is answered as a modern-only server would: a request gets
HTTP 404 with JSON-RPC -32601, the rest 405. Run as `python -m tests.servers.modern_only_server [--port 0]`;
prints `READY <port>`; the endpoint is `/mcp`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.servers.sdk_server import DEFAULT_MAX_BODY, build_app
from tests.servers.serving import serve_forever

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"


def is_modern_request(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    if not isinstance(message, dict) or "method" not in message or "id" not in message:
        return False
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and isinstance(meta.get(PROTOCOL_VERSION_KEY), str)


class ModernOnly:
    """ASGI middleware: lets modern requests through to the SDK app, refuses everything else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.refused: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _reply(send, 405, b"", "text/plain")
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if not is_modern_request(body):
            try:
                request_id = json.loads(body).get("id")
            except (ValueError, AttributeError):
                request_id = None
            if request_id is None:
                await _reply(send, 405, b"", "text/plain")
                return
            error = {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32601, "message": "Method not found"},
            }
            await _reply(send, 404, json.dumps(error).encode(), "application/json")
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reply(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.servers.modern_only_server", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stateless", action="store_true", help="the SDK app in stateless mode")
    args = parser.parse_args(argv)
    app = build_app("stateless" if args.stateless else "streamable", max_body=DEFAULT_MAX_BODY)
    serve_forever(ModernOnly(app), args.port)


if __name__ == "__main__":
    main()
