"""A 2026-07-28-only MCP server: the SDK's dual-era server behind a filter that refuses the handshake era.

Handshake-era traffic (a POST whose JSON-RPC request carries no `io.modelcontextprotocol/protocolVersion`
in `_meta`, any notification, GET and DELETE) is answered as a modern-only server would: a request gets
HTTP 404 with JSON-RPC -32601, the rest 405. Run as `python -m tests.servers.modern_only_server [--port 0]`;
prints `READY <port>`; the endpoint is `/mcp`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from tests.servers.sdk_server import DEFAULT_MAX_BODY, build_app
from tests.servers.serving import read_body, replaying, reply, serve_forever, server_arguments

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
            await reply(send, 405, b"")
            return
        body = await read_body(receive)
        if not is_modern_request(body):
            try:
                request_id = json.loads(body).get("id")
            except (ValueError, AttributeError):
                request_id = None
            if request_id is None:
                await reply(send, 405, b"")
                return
            error = {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": -32601, "message": "Method not found"},
            }
            await reply(send, 404, json.dumps(error).encode(), "application/json")
            return
        await self.app(scope, replaying(body, receive), send)


def main(argv: Sequence[str] | None = None) -> None:
    parser = server_arguments("tests.servers.modern_only_server", __doc__)
    parser.add_argument("--stateless", action="store_true", help="the SDK app in stateless mode")
    args = parser.parse_args(argv)
    app = build_app("stateless" if args.stateless else "streamable", max_body=DEFAULT_MAX_BODY)
    serve_forever(ModernOnly(app), args.port)


if __name__ == "__main__":
    main()
