"""An official-SDK MCP server that requires bearer tokens from a separate authorization server.

Run `python -m tests.servers.oauth_mcp_server --port 0 --issuer http://127.0.0.1:<as-port>`; prints
`READY <port>`; endpoint `/mcp` (Streamable HTTP), or `/sse` with `--transport sse` (legacy HTTP+SSE). Tokens are checked by RFC 7662 introspection at the
issuer's `/introspect`; the server publishes RFC 9728 metadata naming that issuer and answers anonymous
requests with `401` and a `resource_metadata` challenge (the SDK's own middleware). Scope `mcp` is
required for everything; the tool `admin_echo` also needs `admin` and answers `403 insufficient_scope`
without it, so the client has to step up. `--no-validate-resource` accepts tokens without a `resource`
(for an authorization server that rejects the parameter).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import httpx2
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import AnyHttpUrl
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.servers.serving import read_body, replaying, serve_on_port, server_arguments


class IntrospectionVerifier:
    """A `TokenVerifier` asking the authorization server about each token (cached briefly)."""

    def __init__(self, issuer: str) -> None:
        self.endpoint = issuer.rstrip("/") + "/introspect"
        self._cache: dict[str, tuple[float, AccessToken | None]] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        cached = self._cache.get(token)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with httpx2.AsyncClient(timeout=10.0) as client:
            response = await client.post(self.endpoint, data={"token": token})
        body = response.json() if response.status_code == 200 else {}
        access = None
        if body.get("active"):
            access = AccessToken(
                token=token,
                client_id=body.get("client_id", ""),
                scopes=str(body.get("scope", "")).split(),
                expires_at=body.get("exp"),
                resource=body.get("aud"),
            )
        self._cache[token] = (time.monotonic() + 0.5, access)
        return access


class AdminScopeGate:
    """Answers a `tools/call` of `admin_echo` with 403 insufficient_scope unless the token has `admin`."""

    def __init__(self, app: ASGIApp, verifier: IntrospectionVerifier, metadata_url: str) -> None:
        self.app = app
        self.verifier = verifier
        self.metadata_url = metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if await self._needs_admin(scope, body):
            challenge = f'Bearer error="insufficient_scope", scope="mcp admin", resource_metadata="{self.metadata_url}"'
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"www-authenticate", challenge.encode()),
                        (b"content-type", b"application/json"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b'{"error":"insufficient_scope"}'})
            return
        await self.app(scope, replaying(body, receive), send)

    async def _needs_admin(self, scope: Scope, body: bytes) -> bool:
        try:
            message: Any = json.loads(body)
        except ValueError:
            return False
        if not (isinstance(message, dict) and message.get("method") == "tools/call"):
            return False
        if (message.get("params") or {}).get("name") != "admin_echo":
            return False
        header = dict(scope["headers"]).get(b"authorization", b"").decode()
        token = header[7:] if header.lower().startswith("bearer ") else ""
        access = await self.verifier.verify_token(token) if token else None
        return access is not None and "admin" not in access.scopes


def build_app(issuer: str, port: int, validate_resource: bool, transport: str = "streamable") -> ASGIApp:
    resource = f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}"
    verifier = IntrospectionVerifier(issuer)
    server = MCPServer(
        "oauth-test-server",
        token_verifier=verifier,
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(resource),
            required_scopes=["mcp"],
            validate_token_resource=validate_resource,
        ),
    )

    @server.tool()
    def whoami() -> str:
        """Answers when the caller is signed in."""
        return "signed in"

    @server.tool()
    def admin_echo(text: str) -> str:
        """Echoes `text`; needs the `admin` scope."""
        return f"admin: {text}"

    app = server.sse_app() if transport == "sse" else server.streamable_http_app()
    return AdminScopeGate(app, verifier, str(build_resource_metadata_url(AnyHttpUrl(resource))))


def main(argv: Sequence[str] | None = None) -> None:
    parser = server_arguments("tests.servers.oauth_mcp_server", __doc__)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--no-validate-resource", action="store_true")
    parser.add_argument("--transport", choices=("streamable", "sse"), default="streamable")
    args = parser.parse_args(argv)
    # Built for the bound port: the resource URL names it.
    serve_on_port(
        lambda port: build_app(args.issuer, port, not args.no_validate_resource, args.transport), args.port
    )


if __name__ == "__main__":
    main()
