"""The oidc-provider peer's options the sign-in cases rely on, checked with a hand-driven code flow: loopback
redirect URIs on any port for native clients, PKCE required, a provider that rejects `resource` (the resource
switch), pre-registered clients without registration, and the scope policy for step-up."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from tests.oauth.form_browser import walk
from tests.oauth.oidc_peer import OidcStack, oidc_stack_fixture, start_oidc_stack  # noqa: F401 - the fixture

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

REGISTERED_CALLBACK = "http://127.0.0.1:41111/callback"


async def register(stack: OidcStack, **metadata: Any) -> dict[str, Any]:
    body = {
        "application_type": "native",
        "redirect_uris": [REGISTERED_CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        **metadata,
    }
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(f"{stack.issuer}/reg", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def authorize(
    stack: OidcStack, client_id: str, redirect_uri: str, *, pkce: bool = True, **params: str
) -> tuple[dict[str, str], str]:
    """Walk the authorization request to `redirect_uri`; the redirect's query, and the PKCE verifier."""
    verifier = secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": "s",
        **params,
    }
    if pkce:
        digest = hashlib.sha256(verifier.encode()).digest()
        query["code_challenge"] = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        query["code_challenge_method"] = "S256"
    arrival = await walk(f"{stack.issuer}/auth?{urlencode(query)}", stop_at=redirect_uri.split("?")[0])
    assert arrival.status is None, f"ended at {arrival.url}: {arrival.text[:300]}"
    return {name: values[0] for name, values in parse_qs(urlsplit(arrival.url).query).items()}, verifier


async def exchange(
    stack: OidcStack, client_id: str, redirect_uri: str, code: str, verifier: str, **extra: str
):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        **extra,
    }
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(f"{stack.issuer}/token", data=data)


async def test_native_loopback_redirect_uri_may_use_any_port(oidc_stack: OidcStack) -> None:
    client = await register(oidc_stack)
    other_port = "http://127.0.0.1:52222/callback"
    answer, verifier = await authorize(
        oidc_stack, client["client_id"], other_port, scope="mcp", resource=oidc_stack.mcp_url
    )
    assert answer["iss"] == oidc_stack.issuer and answer["state"] == "s"
    token = await exchange(oidc_stack, client["client_id"], other_port, answer["code"], verifier)
    assert token.status_code == 200, token.text
    assert token.json()["refresh_token"], "refresh tokens come without offline_access"


async def test_pkce_is_required(oidc_stack: OidcStack) -> None:
    client = await register(oidc_stack)
    answer, _ = await authorize(oidc_stack, client["client_id"], REGISTERED_CALLBACK, pkce=False, scope="mcp")
    assert answer["error"] == "invalid_request" and "PKCE" in answer["error_description"]


async def test_rejecting_the_resource_parameter_and_a_default_resource(oidc_stack: OidcStack) -> None:
    """For the proxy's setting that leaves `resource` out: this provider then refuses it, and issues tokens for
    its default resource to requests without one."""
    oidc_stack.configure(reject_resource_parameter=True, default_resource=oidc_stack.mcp_url)
    client = await register(oidc_stack)
    refused, _ = await authorize(
        oidc_stack, client["client_id"], REGISTERED_CALLBACK, scope="mcp", resource=oidc_stack.mcp_url
    )
    assert refused["error"] == "invalid_target"
    answer, verifier = await authorize(oidc_stack, client["client_id"], REGISTERED_CALLBACK, scope="mcp")
    assert "code" in answer, answer
    token = await exchange(oidc_stack, client["client_id"], REGISTERED_CALLBACK, answer["code"], verifier)
    assert token.status_code == 200, token.text
    async with httpx2.AsyncClient(timeout=10) as http:
        ping = await http.post(
            oidc_stack.mcp_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"authorization": f"Bearer {token.json()['access_token']}", "accept": "application/json"},
        )
    assert ping.status_code != 401, "the default resource's token is good at the MCP server"


async def test_pre_registered_client_without_registration() -> None:
    confidential = {
        "client_id": "pre-registered",
        "client_secret": "a-test-secret",
        "application_type": "native",
        "redirect_uris": [REGISTERED_CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_post",
    }
    with start_oidc_stack(registration=False, clients=[confidential]) as stack:
        async with httpx2.AsyncClient(timeout=10) as http:
            metadata = (await http.get(stack.metadata_url)).json()
            refused = await http.post(f"{stack.issuer}/reg", json={"redirect_uris": [REGISTERED_CALLBACK]})
        assert "registration_endpoint" not in metadata
        assert refused.status_code == 404
        answer, verifier = await authorize(
            stack, "pre-registered", REGISTERED_CALLBACK, scope="mcp", resource=stack.mcp_url
        )
        token = await exchange(
            stack,
            "pre-registered",
            REGISTERED_CALLBACK,
            answer["code"],
            verifier,
            client_secret="a-test-secret",
        )
        assert token.status_code == 200, token.text


async def test_scope_policy_registered_refuses_scopes_beyond_the_registration(oidc_stack: OidcStack) -> None:
    """oidc-provider's own rule (a client asks only for what it registered) vs the default 'any'."""
    oidc_stack.configure(scope_policy="registered")
    strict = await register(oidc_stack, scope="mcp")
    answer, _ = await authorize(
        oidc_stack,
        strict["client_id"],
        REGISTERED_CALLBACK,
        scope="mcp mcp:admin",
        resource=oidc_stack.mcp_url,
    )
    assert answer["error"] == "invalid_scope"
    oidc_stack.configure(scope_policy="any")
    lenient = await register(oidc_stack, scope="mcp")
    answer, _ = await authorize(
        oidc_stack,
        lenient["client_id"],
        REGISTERED_CALLBACK,
        scope="mcp mcp:admin",
        resource=oidc_stack.mcp_url,
    )
    assert "code" in answer
