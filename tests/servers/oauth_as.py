"""An OAuth 2.1 authorization server for the sign-in tests, built on the official SDK's `mcp.server.auth`.

Run `python -m tests.servers.oauth_as --port 0 [switches]`; prints `READY <port>`. The issuer is
`http://127.0.0.1:<port>`. It approves every authorization request at once (the scripted browser only
follows redirects), so a test's "user" is the browser program. Switches:

- `--token-lifetime S`: access token lifetime (refresh tokens rotate on every use and never expire);
- `--reject-resource`: refuse authorization requests carrying an RFC 8707 `resource`;
- `--no-registration` with `--client-id ID [--client-secret S] --redirect-uri URI`: no registration
  endpoint, one pre-registered client;
- scopes `mcp` (default) and `admin` (for step-up).

Test-only endpoints: `POST /introspect` (RFC 7662, for the MCP server), `GET /_stats` (counts of
registrations, authorizations, code and refresh exchanges), `POST /_revoke_all` (forget every token).
"""

from __future__ import annotations

import argparse
import secrets
import time
from collections import Counter
from collections.abc import Sequence

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl, AnyUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.servers.serving import serve_on_port, server_arguments

SCOPES = ["mcp", "admin"]


class AutoApprovingProvider:
    """An `OAuthAuthorizationServerProvider` keeping everything in memory."""

    def __init__(self, token_lifetime: int, reject_resource: bool) -> None:
        self.token_lifetime = token_lifetime
        self.reject_resource = reject_resource
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.stats: Counter[str] = Counter()

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.stats["registrations"] += 1
        # Policy of this server: a registered client may ask for any scope it supports (step-up works).
        client_info.scope = " ".join(SCOPES)
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        self.stats["authorizations"] += 1
        if self.reject_resource and params.resource:
            raise AuthorizeError("invalid_request", "this server does not accept the resource parameter")
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or ["mcp"],
            expires_at=time.time() + 300,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        code = self.codes.get(authorization_code)
        return code if code is not None and code.client_id == client.client_id else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.stats["code_exchanges"] += 1
        self.codes.pop(authorization_code.code, None)
        return self._issue(client.client_id, authorization_code.scopes, authorization_code.resource)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        token = self.refresh.get(refresh_token)
        return token if token is not None and token.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        self.stats["refreshes"] += 1
        self.refresh.pop(refresh_token.token, None)  # rotation: a refresh token works once
        return self._issue(client.client_id, scopes, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        access = self.access.get(token)
        if access is None or (access.expires_at is not None and access.expires_at < time.time()):
            return None
        return access

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        self.access[access] = AccessToken(
            token=access,
            client_id=client_id,
            scopes=scopes,
            expires_at=int(time.time() + self.token_lifetime),
            resource=resource,
        )
        self.refresh[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource
        )
        return OAuthToken(
            access_token=access,
            expires_in=self.token_lifetime,
            scope=" ".join(scopes),
            refresh_token=refresh,
        )


def build_app(args: argparse.Namespace, issuer: str) -> Starlette:
    provider = AutoApprovingProvider(args.token_lifetime, args.reject_resource)
    if args.client_id:
        provider.clients[args.client_id] = OAuthClientInformationFull(
            client_id=args.client_id,
            client_secret=args.client_secret,
            redirect_uris=[AnyUrl(args.redirect_uri)],
            token_endpoint_auth_method="client_secret_post" if args.client_secret else "none",
            grant_types=["authorization_code", "refresh_token"],
            scope=" ".join(SCOPES),
        )
    routes = create_auth_routes(
        provider,
        AnyHttpUrl(issuer),
        client_registration_options=ClientRegistrationOptions(
            enabled=not args.no_registration, valid_scopes=SCOPES, default_scopes=["mcp"]
        ),
        revocation_options=RevocationOptions(enabled=True),
    )

    async def introspect(request: Request) -> JSONResponse:
        form = await request.form()
        access = await provider.load_access_token(str(form.get("token", "")))
        if access is None:
            return JSONResponse({"active": False})
        return JSONResponse(
            {
                "active": True,
                "client_id": access.client_id,
                "scope": " ".join(access.scopes),
                "exp": access.expires_at,
                "aud": access.resource,
            }
        )

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(dict(provider.stats))

    async def revoke_all(request: Request) -> JSONResponse:
        count = len(provider.access) + len(provider.refresh)
        provider.access.clear()
        provider.refresh.clear()
        return JSONResponse({"revoked": count})

    routes += [
        Route("/introspect", introspect, methods=["POST"]),
        Route("/_stats", stats, methods=["GET"]),
        Route("/_revoke_all", revoke_all, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = server_arguments("tests.servers.oauth_as", __doc__)
    parser.add_argument("--token-lifetime", type=int, default=3600)
    parser.add_argument("--reject-resource", action="store_true")
    parser.add_argument("--no-registration", action="store_true")
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--redirect-uri", default="http://127.0.0.1:1/callback")
    args = parser.parse_args(argv)
    # Built for the bound port: the issuer URL names it.
    serve_on_port(lambda port: build_app(args, f"http://127.0.0.1:{port}"), args.port)


if __name__ == "__main__":
    main()
