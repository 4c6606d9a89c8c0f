"""Signing in through the proxy against the second authorization server, the certified OpenID provider
`oidc-provider` (Node), with an SDK MCP server on another port in front of it (tests/oauth/oidc_peer.py).

Every proxy is a subprocess driven by the SDK's stdio client; the "user" is the scripted browser
(`tests/oauth/browser.py`, counting opens in its log), or headless Chromium in the one end-to-end case.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest

# Until the proxy's sign-in (mcp_sse_proxy/auth/signin.py and tests/oauth/conftest.py's fixtures) is merged
# alongside, there is nothing to test here; afterwards this line is a no-op and can go.
from tests.integration.conftest import open_proxy_session
from tests.oauth.chromium_browser import chromium_path
from tests.oauth.oidc_peer import OidcStack, oidc_stack_fixture, start_oidc_stack  # noqa: F401 - the fixture
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

CHROMIUM_BROWSER = Path(__file__).with_name("chromium_browser.py")


async def call(stack: OidcStack, env: dict[str, str], *args: str, tool: str = "whoami", errlog=None) -> Any:
    """One proxy process: initialize, call `tool`, return its text (whoami's as a dict)."""
    async with open_proxy_session(stack.mcp_url, *args, env=env, errlog=errlog) as session:
        with anyio.fail_after(60):
            result = await session.call_tool(tool, {"text": "hi"} if tool in ("echo", "admin_echo") else {})
    assert not result.is_error, result
    text = result.content[0].text
    return json.loads(text) if tool == "whoami" else text


def stored_record(signin_env) -> dict[str, Any]:
    (path,) = signin_env.stored_files()
    return json.loads(path.read_text())["record"]


async def wait_until_expired(signin_env) -> None:
    # Token lifetimes are wall-clock by nature: wait (bounded) until the stored token is past its expiry.
    expires_at = stored_record(signin_env)["expires_at"]
    await eventually(lambda: time.time() >= expires_at + 0.2, timeout=30, interval=0.1, what="token expired")


async def test_first_sign_in_then_a_second_process_reuses_the_token(
    oidc_stack: OidcStack, signin_env
) -> None:
    who = await call(oidc_stack, signin_env.env)
    assert who["subject"] == "test-user" and who["scopes"] == ["mcp"]
    assert len(signin_env.browser_opens()) == 1
    assert await call(oidc_stack, signin_env.env) == who
    assert len(signin_env.browser_opens()) == 1, "the second process signed in again"
    stats = oidc_stack.stats()
    assert stats["registrations"] == 1 and stats["authorizations"] == 1
    assert stats["tokens"] == {"authorization_code": 1}
    record = stored_record(signin_env)
    assert record["oauth_metadata"]["issuer"] == oidc_stack.issuer


async def test_a_restart_with_an_expired_token_refreshes_silently(oidc_stack: OidcStack, signin_env) -> None:
    oidc_stack.set_token_ttl(3)
    await call(oidc_stack, signin_env.env)
    await wait_until_expired(signin_env)
    assert (await call(oidc_stack, signin_env.env))["subject"] == "test-user"
    assert len(signin_env.browser_opens()) == 1
    assert oidc_stack.stats()["tokens"] == {"authorization_code": 1, "refresh_token": 1}


async def test_a_running_proxy_refreshes_when_its_token_expires(oidc_stack: OidcStack, signin_env) -> None:
    oidc_stack.set_token_ttl(3)
    async with open_proxy_session(oidc_stack.mcp_url, env=signin_env.env) as session:
        assert not (await session.call_tool("whoami", {})).is_error
        await wait_until_expired(signin_env)
        assert not (await session.call_tool("whoami", {})).is_error
    assert len(signin_env.browser_opens()) == 1
    assert oidc_stack.stats()["tokens"].get("refresh_token", 0) >= 1


async def test_two_running_proxies_share_one_refresh_of_the_rotating_token(
    oidc_stack: OidcStack, signin_env
) -> None:
    """oidc-provider rotates refresh tokens and revokes the whole grant when a spent one comes back: a second
    refresh with the old token would end both instances' sign-in."""
    oidc_stack.set_token_ttl(3)
    await call(oidc_stack, signin_env.env)
    async with (
        open_proxy_session(oidc_stack.mcp_url, env=signin_env.env) as first,
        open_proxy_session(oidc_stack.mcp_url, env=signin_env.env) as second,
    ):
        await wait_until_expired(signin_env)
        results = []

        async def whoami(session) -> None:
            results.append(await session.call_tool("whoami", {}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(whoami, first)
            tg.start_soon(whoami, second)
    assert [result.is_error for result in results] == [False, False]
    assert len(signin_env.browser_opens()) == 1
    assert oidc_stack.stats()["tokens"] == {"authorization_code": 1, "refresh_token": 1}


async def test_three_instances_started_together_sign_in_once(oidc_stack: OidcStack, signin_env) -> None:
    answers: list[Any] = []

    async def one() -> None:
        answers.append(await call(oidc_stack, signin_env.env))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert len(answers) == 3 and all(answer["subject"] == "test-user" for answer in answers)
    assert len(signin_env.browser_opens()) == 1
    stats = oidc_stack.stats()
    assert stats["registrations"] == 1 and stats["authorizations"] == 1


async def test_revoked_grant_leads_to_a_new_sign_in(signin_env) -> None:
    # Opaque tokens, checked by introspection: revoking the grant ends the access token at once too.
    with start_oidc_stack(access_token_format="opaque") as stack:
        await call(stack, signin_env.env)
        assert stack.revoke_grants() == 1
        assert (await call(stack, signin_env.env))["subject"] == "test-user"
        assert len(signin_env.browser_opens()) == 2
        assert stack.stats()["registrations"] == 1, "the stored registration is reused"


async def test_the_resource_parameter_can_be_left_out(oidc_stack: OidcStack, signin_env) -> None:
    oidc_stack.configure(reject_resource_parameter=True, default_resource=oidc_stack.mcp_url)
    assert (await call(oidc_stack, signin_env.env, "--no-oauth-resource"))["scopes"] == ["mcp"]
    (opened,) = signin_env.browser_opens()
    assert "resource=" not in opened["url"]


async def test_step_up_on_insufficient_scope(oidc_stack: OidcStack, signin_env) -> None:
    async with open_proxy_session(oidc_stack.mcp_url, env=signin_env.env) as session:
        assert not (await session.call_tool("whoami", {})).is_error
        with anyio.fail_after(60):
            result = await session.call_tool("admin_echo", {"text": "hi"})
        assert not result.is_error, result
        assert result.content[0].text == "admin: hi"
    assert len(signin_env.browser_opens()) == 2
    assert set(stored_record(signin_env)["scope"].split()) >= {"mcp", "mcp:admin"}


async def test_step_up_beyond_the_registered_scope_registers_again_with_the_union(
    oidc_stack: OidcStack, signin_env
) -> None:
    """oidc-provider's own rule: a dynamically registered client may only ask for the scopes it registered
    (the SDK registers the first challenge's). For the step-up the proxy registers again with the union of
    scopes, so the second authorization is not refused with invalid_scope."""
    oidc_stack.configure(scope_policy="registered")
    async with open_proxy_session(oidc_stack.mcp_url, env=signin_env.env) as session:
        assert json.loads((await session.call_tool("whoami", {})).content[0].text)["scopes"] == ["mcp"]
        with anyio.fail_after(60):
            result = await session.call_tool("admin_echo", {"text": "hi"})
        assert not result.is_error, result
        assert result.content[0].text == "admin: hi"
        who = json.loads((await session.call_tool("whoami", {})).content[0].text)
        assert sorted(who["scopes"]) == ["mcp", "mcp:admin"]
    assert oidc_stack.stats()["registrations"] == 2
    assert len(signin_env.browser_opens()) == 2
    record = stored_record(signin_env)
    assert {"mcp", "mcp:admin"} <= set(record["client_info"]["scope"].split())


async def test_step_up_within_the_registered_scope_keeps_the_registration(
    oidc_stack: OidcStack, signin_env
) -> None:
    """The 'any' policy registers no scope list: the step-up reuses the registration (the SDK's own union)."""
    async with open_proxy_session(oidc_stack.mcp_url, env=signin_env.env) as session:
        assert not (await session.call_tool("whoami", {})).is_error
        with anyio.fail_after(60):
            assert not (await session.call_tool("admin_echo", {"text": "hi"})).is_error
    assert oidc_stack.stats()["registrations"] == 1


async def test_pre_registered_client_at_a_provider_without_registration(signin_env) -> None:
    port = _free_port()
    client = {
        "client_id": "desk-client",
        "application_type": "native",
        "redirect_uris": [f"http://127.0.0.1:{port}/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    with start_oidc_stack(registration=False, clients=[client]) as stack:
        who = await call(
            stack, signin_env.env, "--oauth-client-id", "desk-client", "--oauth-callback-port", str(port)
        )
        assert who["client_id"] == "desk-client"
        assert stack.stats()["registrations"] == 0


async def test_tokens_never_appear_in_the_proxy_output(oidc_stack: OidcStack, signin_env) -> None:
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        await call(oidc_stack, signin_env.env, "--log-level", "debug", errlog=errlog)
        errlog.seek(0)
        output = errlog.read()
    record = stored_record(signin_env)
    for secret in (record["access_token"], record["refresh_token"]):
        assert secret and secret not in output


@pytest.mark.skipif(chromium_path() is None, reason="no chromium on this machine (.ci/run installs Debian's chromium where apt-get runs as root)")
async def test_headless_chromium_as_the_browser(oidc_stack: OidcStack, signin_env) -> None:
    env = {**signin_env.env, "BROWSER": f"{sys.executable} {CHROMIUM_BROWSER} %s"}
    assert (await call(oidc_stack, env))["subject"] == "test-user"
    (opened,) = signin_env.browser_opens()
    assert opened["browser"] == "chromium"
    assert oidc_stack.stats()["authorizations"] == 1


def _free_port() -> int:
    from tests.oauth.conftest import free_port  # the oauth helper's; imported late, like the fixtures

    return free_port()


CIMD_URL = "https://client.mcp-sse-proxy.test/oauth/client.json"
CIMD_DOCUMENT = {
    "client_id": CIMD_URL,
    "client_name": "mcp-sse-proxy",
    "application_type": "native",
    "redirect_uris": ["http://127.0.0.1/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
    "scope": "offline_access mcp mcp:admin",
}


async def test_a_client_id_metadata_document_replaces_registration(signin_env) -> None:
    """oidc-provider's own CIMD implementation (draft-02); only its fetch of the https document is answered
    from memory (provider.js, OIDC_CIMD_DOCUMENTS): a test cannot serve https with a trusted certificate."""
    with start_oidc_stack(env={"OIDC_CIMD_DOCUMENTS": json.dumps({CIMD_URL: CIMD_DOCUMENT})}) as stack:
        assert stack.metadata()["client_id_metadata_document_supported"] is True
        who = await call(stack, signin_env.env, "--oauth-client-metadata-url", CIMD_URL)
        assert who["client_id"] == CIMD_URL and who["scopes"] == ["mcp"]
        stats = stack.stats()
        assert stats["registrations"] == 0 and stats["cimdFetches"] >= 1
        (opened,) = signin_env.browser_opens()
        assert f"client_id={quote(CIMD_URL, safe='')}" in opened["url"]
        # Reuse by a second process: the stored token, no browser, no registration.
        assert (await call(stack, signin_env.env, "--oauth-client-metadata-url", CIMD_URL))[
            "client_id"
        ] == CIMD_URL
        assert len(signin_env.browser_opens()) == 1 and stack.stats()["registrations"] == 0


async def test_a_pre_registered_client_wins_over_the_metadata_document(signin_env) -> None:
    port = _free_port()
    client = {
        "client_id": "desk-client",
        "application_type": "native",
        "redirect_uris": [f"http://127.0.0.1:{port}/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    documents = json.dumps({CIMD_URL: CIMD_DOCUMENT})
    with start_oidc_stack(clients=[client], env={"OIDC_CIMD_DOCUMENTS": documents}) as stack:
        who = await call(
            stack,
            signin_env.env,
            "--oauth-client-id",
            "desk-client",
            "--oauth-callback-port",
            str(port),
            "--oauth-client-metadata-url",
            CIMD_URL,
        )
        assert who["client_id"] == "desk-client"
        assert stack.stats()["cimdFetches"] == 0 and stack.stats()["registrations"] == 0


async def test_without_server_support_the_metadata_document_gives_way_to_registration(
    oidc_stack: OidcStack, signin_env
) -> None:
    assert "client_id_metadata_document_supported" not in oidc_stack.metadata()
    who = await call(oidc_stack, signin_env.env, "--oauth-client-metadata-url", CIMD_URL)
    assert who["client_id"] != CIMD_URL
    assert oidc_stack.stats()["registrations"] == 1
