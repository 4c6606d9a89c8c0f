"""An official-SDK MCP server that requires a bearer token issued by the test OpenID provider (tests/servers/oidc/).

Run it as `python -m tests.servers.oidc_mcp_server --issuer http://127.0.0.1:PORT [--verify jwt|introspection]`;
it binds 127.0.0.1 only, serves Streamable HTTP at `/mcp` and prints `READY <port>` once it listens.

- Anonymous requests get `401` with `WWW-Authenticate: Bearer resource_metadata=...`; the Protected Resource
  Metadata (RFC 9728) names the provider as the authorization server and `mcp` as the scope to ask for.
- Tokens are JWTs checked against the provider's JWKS (issuer, audience = this server's `/mcp` URL, expiry),
  or opaque tokens checked by introspection (`--verify introspection`, client `mcp-resource-server` with the
  secret from `OIDC_RS_CLIENT_SECRET`), so a revoked grant is refused at once.
- `admin_echo` needs the extra scope `mcp:admin`: calling it without answers `403` with
  `error="insufficient_scope"`, for step-up tests. `whoami` reports the token's subject, client and scopes.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

import httpx2
import jwt
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.servers import serving

BASE_SCOPE = "mcp"
ADMIN_SCOPE = "mcp:admin"
ADMIN_TOOL = "admin_echo"
RS_CLIENT_ID = "mcp-resource-server"
MAX_BODY = 1024 * 1024


def _access_token(token: str, claims: dict[str, Any], audience: str) -> AccessToken:
    return AccessToken(
        token=token,
        client_id=str(claims.get("client_id", "")),
        scopes=str(claims.get("scope", "")).split(),
        expires_at=int(claims["exp"]) if "exp" in claims else None,
        resource=audience,
        subject=claims.get("sub"),
        claims={"iss": claims.get("iss")},
    )


def _has_audience(claims: dict[str, Any], audience: str) -> bool:
    aud = claims.get("aud")
    return audience in (aud if isinstance(aud, list) else [aud])


class JwtVerifier(TokenVerifier):
    """JWT access tokens (RFC 9068) signed with a key of the provider's JWKS; the key set is fetched again
    once for an unknown key id (the provider makes new keys on each start)."""

    def __init__(self, issuer: str, jwks_uri: str, audience: str) -> None:
        self._issuer, self._jwks_uri, self._audience = issuer, jwks_uri, audience
        self._keys: jwt.PyJWKSet | None = None

    async def _key(self, kid: str | None, refresh: bool) -> jwt.PyJWK | None:
        if self._keys is None or refresh:
            async with httpx2.AsyncClient(timeout=10) as client:
                response = await client.get(self._jwks_uri)
            response.raise_for_status()
            self._keys = jwt.PyJWKSet.from_dict(response.json())
        return next((key for key in self._keys.keys if key.key_id == kid), None)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = await self._key(kid, refresh=False) or await self._key(kid, refresh=True)
            if key is None:
                return None
            claims = jwt.decode(
                token, key=key, algorithms=["ES256"], audience=self._audience, issuer=self._issuer
            )
        except jwt.PyJWTError:
            return None
        return _access_token(token, claims, self._audience)


class IntrospectionVerifier(TokenVerifier):
    """Opaque access tokens, asked about at the provider's introspection endpoint (RFC 7662) on every request."""

    def __init__(self, endpoint: str, client_secret: str, audience: str) -> None:
        self._endpoint, self._secret, self._audience = endpoint, client_secret, audience

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx2.AsyncClient(timeout=10, auth=(RS_CLIENT_ID, self._secret)) as client:
            response = await client.post(self._endpoint, data={"token": token})
        if response.status_code != 200:
            return None
        claims = response.json()
        if not claims.get("active") or not _has_audience(claims, self._audience):
            return None
        return _access_token(token, claims, self._audience)


class StepUpGate:
    """Answers `403 insufficient_scope` to a `tools/call` of the admin tool by a token without `mcp:admin`.

    The SDK checks scopes per endpoint, not per tool, so this reads the JSON-RPC body in front of it (bounded)
    and replays it to the app unchanged."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, resource_metadata_url: str) -> None:
        self._app, self._verifier, self._metadata_url = app, verifier, resource_metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self._app(scope, receive, send)
            return
        body, messages = b"", []
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body") or len(body) > MAX_BODY:
                break
        if await self._needs_step_up(scope, body):
            await self._refuse(send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self._app(scope, replay, send)

    async def _needs_step_up(self, scope: Scope, body: bytes) -> bool:
        try:
            message = json.loads(body)
        except ValueError:
            return False
        calls = message if isinstance(message, list) else [message]
        if not any(_calls_admin_tool(call) for call in calls):
            return False
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if not authorization.lower().startswith("bearer "):
            return False  # the SDK's own check answers 401
        token = await self._verifier.verify_token(authorization[7:])
        return token is not None and ADMIN_SCOPE not in token.scopes

    async def _refuse(self, send: Send) -> None:
        challenge = (
            f'Bearer error="insufficient_scope", scope="{BASE_SCOPE} {ADMIN_SCOPE}", '
            f'resource_metadata="{self._metadata_url}", error_description="{ADMIN_TOOL} needs {ADMIN_SCOPE}"'
        )
        body = json.dumps({"error": "insufficient_scope"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", challenge.encode()),
        ]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _calls_admin_tool(message: object) -> bool:
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return False
    params = message.get("params")
    return isinstance(params, dict) and params.get("name") == ADMIN_TOOL


def build_server(issuer: str, resource_url: str, verifier: TokenVerifier) -> MCPServer:
    """The SDK server with its tools, requiring tokens from `issuer` for `resource_url`."""
    auth = AuthSettings(
        issuer_url=issuer,
        resource_server_url=resource_url,
        required_scopes=[BASE_SCOPE],
        validate_token_resource=True,
    )
    mcp = MCPServer(name="oidc-protected-server", version="1.0.0", auth=auth, token_verifier=verifier)

    @mcp.tool(structured_output=False)
    def echo(text: str) -> str:
        """Return `text` unchanged."""
        return text

    @mcp.tool(name=ADMIN_TOOL, structured_output=False)
    def admin_echo(text: str) -> str:
        """Return `text` unchanged; needs the `mcp:admin` scope."""
        return f"admin: {text}"

    @mcp.tool(structured_output=False)
    def whoami() -> str:
        """The subject, client and scopes of the token this request carried (JSON)."""
        token = get_access_token()
        if token is None:
            return "{}"
        return json.dumps({"subject": token.subject, "client_id": token.client_id, "scopes": token.scopes})

    return mcp


def discover(issuer: str) -> dict[str, Any]:
    """The provider's OpenID configuration."""
    response = httpx2.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    return response.json()


def build_app(issuer: str, port: int, verify: str) -> ASGIApp:
    resource_url = f"http://{serving.LOOPBACK}:{port}/mcp"
    metadata = discover(issuer)
    verifier: TokenVerifier
    if verify == "introspection":
        secret = os.environ["OIDC_RS_CLIENT_SECRET"]
        verifier = IntrospectionVerifier(metadata["introspection_endpoint"], secret, resource_url)
    else:
        verifier = JwtVerifier(metadata["issuer"], metadata["jwks_uri"], resource_url)
    app = build_server(issuer, resource_url, verifier).streamable_http_app()
    return StepUpGate(app, verifier, str(build_resource_metadata_url(resource_url)))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = serving.server_arguments("tests.servers.oidc_mcp_server", __doc__)
    parser.add_argument("--issuer", required=True, help="the test OpenID provider, http://127.0.0.1:PORT")
    parser.add_argument("--verify", choices=("jwt", "introspection"), default="jwt")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # Built for the bound port: the resource URL (the tokens' audience) names it.
    serving.serve_on_port(lambda port: build_app(args.issuer, port, args.verify), args.port)


if __name__ == "__main__":
    main()
