"""The device authorization grant client (mcp_sse_proxy/auth/device.py) against oidc-provider: a user approves on
the provider's verification page (driven by the form-following scripted browser), the token works at the MCP
server; slow_down, denial, expiry and our own timeout end the polling as RFC 8628 says."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import httpx2
import jwt
import pytest

from mcp_sse_proxy.auth.device import DeviceGrantError, device_sign_in
from tests.oauth.form_browser import Arrival, walk
from tests.oauth.oidc_peer import OidcStack, oidc_stack_fixture, start_oidc_stack  # noqa: F401 - the fixture

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
WAIT = 30.0


async def register_device_client(stack: OidcStack, auth_method: str = "none") -> dict[str, Any]:
    """A native client allowed the device grant and refresh, registered dynamically (RFC 7591)."""
    metadata = {
        "client_name": "device grant test",
        "application_type": "native",
        "grant_types": [DEVICE_GRANT, "refresh_token"],
        "response_types": [],
        "redirect_uris": [],
        "token_endpoint_auth_method": auth_method,
    }
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(f"{stack.issuer}/reg", json=metadata)
    assert response.status_code == 201, response.text
    return response.json()


class User:
    """Sees what `show` shows and approves (or not) in the scripted browser, in a task of the test's group."""

    def __init__(self, tg: anyio.abc.TaskGroup, *, approve: bool = True) -> None:
        self._tg, self._approve = tg, approve
        self.shown: list[tuple[str, str | None, str]] = []
        self.arrivals: list[Arrival] = []
        self.done = anyio.Event()

    def show(self, uri: str, complete: str | None, user_code: str) -> None:
        self.shown.append((uri, complete, user_code))
        if self._approve:
            self._tg.start_soon(self.visit, complete or uri)

    async def visit(self, url: str) -> None:
        self.arrivals.append(await walk(url))
        self.done.set()


def recording_sleep(waits: list[float], cap: float = 1.0) -> Callable[[float], Awaitable[None]]:
    """Records the waits the client asks for; sleeps at most `cap` (the peer does not time our polls)."""

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await anyio.sleep(min(seconds, cap))  # the scenario: the client's poll interval, shortened

    return sleep


async def sign_in(stack: OidcStack, client: dict[str, Any], user: User, **options: Any) -> dict[str, Any]:
    metadata = httpx2.get(stack.metadata_url, timeout=10).json()
    async with httpx2.AsyncClient(timeout=10) as http:
        with anyio.fail_after(WAIT):
            return await device_sign_in(
                http,
                device_endpoint=metadata["device_authorization_endpoint"],
                token_endpoint=metadata["token_endpoint"],
                client_id=client["client_id"],
                client_secret=client.get("client_secret"),
                scopes=options.pop("scopes", ["mcp"]),
                resource=options.pop("resource", stack.mcp_url),
                show=user.show,
                timeout=options.pop("timeout", WAIT),
                **options,
            )


async def whoami(stack: OidcStack, access_token: str) -> dict[str, Any]:
    calls = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}},
    ]
    headers = {"authorization": f"Bearer {access_token}", "accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=10) as http:
        first = await http.post(stack.mcp_url, json=calls[0], headers=headers)
        assert first.status_code == 200, first.text
        headers["mcp-session-id"] = first.headers["mcp-session-id"]
        headers["mcp-protocol-version"] = "2025-06-18"
        answer = await http.post(stack.mcp_url, json=calls[1], headers=headers)
    data = next(line[5:] for line in answer.text.splitlines() if line.startswith("data:"))
    return json.loads(json.loads(data)["result"]["content"][0]["text"])


@pytest.mark.parametrize("auth_method", ["none", "client_secret_basic", "client_secret_post"])
async def test_device_sign_in_gets_a_token_for_the_mcp_server(
    oidc_stack: OidcStack, auth_method: str
) -> None:
    client = await register_device_client(oidc_stack, auth_method)
    waits: list[float] = []
    async with anyio.create_task_group() as tg:
        user = User(tg)
        method = {} if auth_method == "none" else {"auth_method": auth_method}
        token = await sign_in(oidc_stack, client, user, sleep=recording_sleep(waits), **method)
    [(uri, complete, user_code)] = user.shown
    assert uri == f"{oidc_stack.issuer}/device" and complete and user_code in complete.replace("%2D", "-")
    assert user.arrivals[0].status == 200 and "Sign-in Success" in user.arrivals[0].text
    assert waits and all(wait == 1 for wait in waits), "the provider's interval is 1 s"
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["aud"] == oidc_stack.mcp_url and claims["scope"] == "mcp"
    assert token["refresh_token"] and token["token_type"].lower() == "bearer"
    assert await whoami(oidc_stack, token["access_token"]) == {
        "subject": "test-user",
        "client_id": client["client_id"],
        "scopes": ["mcp"],
    }
    assert oidc_stack.stats()["tokens"] == {DEVICE_GRANT: 1}


async def test_slow_down_adds_five_seconds_to_the_interval(oidc_stack: OidcStack) -> None:
    oidc_stack.configure(slow_down_polls=1)
    client = await register_device_client(oidc_stack)
    waits: list[float] = []
    sleep = recording_sleep(waits)

    async def approve_after_slow_down(seconds: float) -> None:
        # The first poll (after the first wait) is answered slow_down; approve only then, so it is pending.
        if len(waits) == 1:
            await user.visit(user.shown[0][1] or user.shown[0][0])
        await sleep(seconds)

    async with anyio.create_task_group() as tg:
        user = User(tg, approve=False)
        token = await sign_in(oidc_stack, client, user, sleep=approve_after_slow_down)
    assert token["access_token"]
    assert waits[:2] == [1, 6] and all(wait == 6 for wait in waits[1:])


async def test_a_denied_sign_in_ends_with_access_denied(oidc_stack: OidcStack) -> None:
    oidc_stack.configure(approve=False)
    client = await register_device_client(oidc_stack)
    async with anyio.create_task_group() as tg:
        user = User(tg)
        with pytest.raises(DeviceGrantError, match="denied") as raised:
            await sign_in(oidc_stack, client, user, sleep=recording_sleep([]))
    assert raised.value.error == "access_denied"
    assert user.done.is_set()


async def test_an_unapproved_code_expires() -> None:
    with start_oidc_stack(device_code_ttl=2) as stack:
        client = await register_device_client(stack)
        async with anyio.create_task_group() as tg:
            with pytest.raises(DeviceGrantError, match="expired") as raised:
                await sign_in(stack, client, User(tg, approve=False))
    assert raised.value.error == "expired_token"


async def test_our_timeout_ends_the_polling(oidc_stack: OidcStack) -> None:
    client = await register_device_client(oidc_stack)
    async with anyio.create_task_group() as tg:
        with pytest.raises(DeviceGrantError, match="not approved within 2 s") as raised:
            await sign_in(oidc_stack, client, User(tg, approve=False), timeout=2)
    assert raised.value.error == "timeout"
    assert oidc_stack.stats()["devicePolls"] >= 1


async def test_an_unknown_client_is_refused_before_anything_is_shown(oidc_stack: OidcStack) -> None:
    async with anyio.create_task_group() as tg:
        user = User(tg)
        with pytest.raises(DeviceGrantError, match="invalid_client") as raised:
            await sign_in(oidc_stack, {"client_id": "nobody"}, user)
    assert raised.value.error == "invalid_client" and user.shown == []
