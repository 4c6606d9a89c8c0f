"""The oidc-provider stack works end to end with the official SDK's own OAuth client: discovery, dynamic
registration, authorization code + PKCE with `resource` and `iss`, a tool call, refresh with rotation after a
short token lifetime, and the step-up challenge. If these fail, the proxy's tests against this peer say nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import jwt
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from tests.oauth import oidc_peer
from tests.oauth.form_browser import walk
from tests.oauth.oidc_peer import OidcStack, oidc_stack_fixture, start_oidc_stack  # noqa: F401 - the fixture
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

CALLBACK = "http://127.0.0.1:53682/callback"  # never listened on: the scripted browser stops at it
STEP_TIMEOUT = 30.0


@dataclass
class MemoryStorage:
    """The SDK's TokenStorage, in memory; `saved` records every token set, in order."""

    tokens: OAuthToken | None = None
    client_info: OAuthClientInformationFull | None = None
    saved: list[OAuthToken] = field(default_factory=list)

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.saved.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class ScriptedBrowser:
    """The SDK's redirect and callback handlers: "opens" the authorization URL by walking it to the callback."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.callbacks: list[str] = []
        self._arrived = anyio.Event()

    async def open(self, url: str) -> None:
        self.opened.append(url)
        self._arrived = anyio.Event()
        arrival = await walk(url, stop_at=CALLBACK)
        assert arrival.status is None, (
            f"the sign-in ended at {arrival.url} ({arrival.status}): {arrival.text}"
        )
        self.callbacks.append(arrival.url)
        self._arrived.set()

    async def callback(self) -> AuthorizationCodeResult:
        with anyio.fail_after(STEP_TIMEOUT):
            await self._arrived.wait()
        query = {name: values[0] for name, values in parse_qs(urlsplit(self.callbacks[-1]).query).items()}
        assert "code" in query, f"the authorization server answered {query}"
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


def sdk_provider(stack: OidcStack, storage: MemoryStorage, browser: ScriptedBrowser) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(redirect_uris=[CALLBACK], client_name="oidc peer self-test")
    return OAuthClientProvider(stack.mcp_url, metadata, storage, browser.open, browser.callback)


@asynccontextmanager
async def signed_in_session(stack: OidcStack, auth: OAuthClientProvider) -> AsyncIterator[ClientSession]:
    async with httpx2.AsyncClient(auth=auth, timeout=STEP_TIMEOUT) as http:
        async with streamable_http_client(stack.mcp_url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                with anyio.fail_after(STEP_TIMEOUT):
                    await session.initialize()
                yield session


async def call_text(session: ClientSession, tool: str, **arguments: str) -> str:
    with anyio.fail_after(STEP_TIMEOUT):
        result = await session.call_tool(tool, arguments)
    assert not result.is_error, result
    return "".join(getattr(block, "text", "") for block in result.content)


async def test_metadata_names_the_provider_and_its_capabilities(oidc_stack: OidcStack) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        anonymous = await http.post(oidc_stack.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        challenge = anonymous.headers["www-authenticate"]
        metadata_url = challenge.split('resource_metadata="', 1)[1].split('"', 1)[0]
        resource = (await http.get(metadata_url)).json()
        provider = (await http.get(oidc_stack.metadata_url)).json()
    assert anonymous.status_code == 401
    assert resource["resource"] == oidc_stack.mcp_url
    assert resource["authorization_servers"] == [oidc_stack.issuer]
    assert provider["issuer"] == oidc_stack.issuer
    assert provider["code_challenge_methods_supported"] == ["S256"]
    assert provider["authorization_response_iss_parameter_supported"] is True
    for endpoint in ("registration", "device_authorization", "introspection", "revocation", "token"):
        assert provider[f"{endpoint}_endpoint"].startswith(oidc_stack.issuer + "/")


async def test_sdk_client_signs_in_then_refreshes_with_rotation(oidc_stack: OidcStack) -> None:
    oidc_stack.set_token_ttl(2)
    storage, browser = MemoryStorage(), ScriptedBrowser()
    auth = sdk_provider(oidc_stack, storage, browser)
    async with signed_in_session(oidc_stack, auth) as session:
        who = json.loads(await call_text(session, "whoami"))
        assert await call_text(session, "echo", text="hi") == "hi"

        # One browser open, one registration, a code flow with PKCE, `resource` and an `iss` on the redirect.
        assert len(browser.opened) == 1
        query = parse_qs(urlsplit(browser.opened[0]).query)
        assert query["code_challenge_method"] == ["S256"]
        assert query["resource"] == [oidc_stack.mcp_url]
        assert parse_qs(urlsplit(browser.callbacks[0]).query)["iss"] == [oidc_stack.issuer]
        assert who == {"subject": "test-user", "client_id": storage.client_info.client_id, "scopes": ["mcp"]}
        first = storage.tokens
        claims = jwt.decode(first.access_token, options={"verify_signature": False})
        assert claims["aud"] == oidc_stack.mcp_url and claims["iss"] == oidc_stack.issuer
        assert first.refresh_token

        # The access token lives 2 s: once both sides see it expired (the JWT's `exp` counts from a whole-second
        # `iat`, the SDK's from when the answer arrived), the SDK refreshes before the next request. (On a 401 for a
        # token it still thinks valid, the SDK signs in again instead of refreshing.)
        assert auth.context.token_expiry_time is not None
        expiry = max(claims["exp"], auth.context.token_expiry_time) + 0.1
        await eventually(lambda: time.time() > expiry, what="the access token is past its expiry")
        assert await call_text(session, "echo", text="after expiry") == "after expiry"

    assert len(browser.opened) == 1, f"a refresh must not open the browser: {oidc_stack.stats()}"
    refreshed = storage.tokens
    assert refreshed.access_token != first.access_token
    assert refreshed.refresh_token and refreshed.refresh_token != first.refresh_token
    stats = oidc_stack.stats()
    assert stats["registrations"] == 1 and stats["authorizations"] == 1
    assert stats["tokens"] == {"authorization_code": 1, "refresh_token": 1}

    # Rotation: the first refresh token is spent; presenting it again is refused.
    async with httpx2.AsyncClient(timeout=10) as http:
        reuse = await http.post(
            f"{oidc_stack.issuer}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first.refresh_token,
                "client_id": storage.client_info.client_id,
                "client_secret": storage.client_info.client_secret or "",
            },
        )
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"


async def test_admin_tool_challenges_for_the_extra_scope_and_the_sdk_steps_up(
    oidc_stack: OidcStack,
) -> None:
    storage, browser = MemoryStorage(), ScriptedBrowser()
    auth = sdk_provider(oidc_stack, storage, browser)
    async with signed_in_session(oidc_stack, auth) as session:
        assert json.loads(await call_text(session, "whoami"))["scopes"] == ["mcp"]
        assert await call_text(session, "admin_echo", text="x") == "admin: x"
        assert sorted(json.loads(await call_text(session, "whoami"))["scopes"]) == ["mcp", "mcp:admin"]
    assert len(browser.opened) == 2, "the step-up is a second authorization"
    assert "mcp:admin" in parse_qs(urlsplit(browser.opened[1]).query)["scope"][0].split()


async def test_step_up_challenge_is_403_insufficient_scope(oidc_stack: OidcStack) -> None:
    storage, browser = MemoryStorage(), ScriptedBrowser()
    async with signed_in_session(oidc_stack, sdk_provider(oidc_stack, storage, browser)):
        pass
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "admin_echo", "arguments": {}},
    }
    headers = {"authorization": f"Bearer {storage.tokens.access_token}", "accept": "application/json"}
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(oidc_stack.mcp_url, json=call, headers=headers)
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="mcp mcp:admin"' in challenge


async def test_revoked_grant_refuses_opaque_tokens_at_once() -> None:
    with start_oidc_stack(access_token_format="opaque") as stack:
        storage, browser = MemoryStorage(), ScriptedBrowser()
        async with signed_in_session(stack, sdk_provider(stack, storage, browser)) as session:
            assert await call_text(session, "echo", text="before") == "before"
        headers = {"authorization": f"Bearer {storage.tokens.access_token}", "accept": "application/json"}
        ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
        assert stack.revoke_grants() == 1
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(stack.mcp_url, json=ping, headers=headers)
            refresh = await http.post(
                f"{stack.issuer}/token",
                data={"grant_type": "refresh_token", "refresh_token": storage.tokens.refresh_token},
                auth=(storage.client_info.client_id, storage.client_info.client_secret or ""),
            )
    assert response.status_code == 401
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_without_node_the_stack_fails_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a silent skip: CI has Node, so a machine without it must notice the missing tests."""
    monkeypatch.setattr(oidc_peer.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="need Node.js"):
        with start_oidc_stack():
            pass
