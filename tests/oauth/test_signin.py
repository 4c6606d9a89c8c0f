"""Signing in through the proxy against the SDK-built authorization server (real peers on 127.0.0.1).

Every proxy is a subprocess driven by the SDK's stdio client; the "user" is the scripted browser
(`tests/oauth/browser.py`), whose log counts how often a browser was opened.
"""

from __future__ import annotations

import json
import stat
import tempfile
import time

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tests.integration.conftest import open_proxy_session
from tests.oauth.conftest import free_port
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def _call(peers, signin_env, *args: str, tool: str = "whoami", errlog=None, env=None) -> str:
    async with open_proxy_session(peers.url, *args, env=env or signin_env.env, errlog=errlog) as session:
        result = await session.call_tool(tool, {"text": "hi"} if tool == "admin_echo" else {})
        assert not result.is_error, result
        return result.content[0].text


async def _initialize_error(url: str, *args: str, env) -> str:
    """The JSON-RPC error message the proxy answers `initialize` with."""
    async with open_proxy_session(url, *args, env=env, era="none") as session:
        with anyio.fail_after(40), pytest.raises(MCPError) as caught:
            await session.initialize()
    return str(caught.value)


def _stored_record(signin_env) -> dict:
    (path,) = signin_env.stored_files()
    return json.loads(path.read_text())["record"]


async def _wait_until_expired(signin_env) -> None:
    # Token lifetimes are wall-clock by nature: wait (bounded) until the stored token is past its expiry.
    expires_at = _stored_record(signin_env)["expires_at"]
    await eventually(lambda: time.time() >= expires_at + 0.2, timeout=30, interval=0.1, what="token expired")


async def test_first_sign_in_opens_the_browser_once_and_a_second_process_reuses_the_token(
    oauth_peers, signin_env
) -> None:
    peers = oauth_peers()
    assert await _call(peers, signin_env) == "signed in"
    assert len(signin_env.browser_opens()) == 1
    assert peers.stats().get("registrations") == 1

    assert await _call(peers, signin_env) == "signed in"
    assert len(signin_env.browser_opens()) == 1, "the second process signed in again"
    assert peers.stats().get("code_exchanges") == 1

    files = signin_env.stored_files()
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    record = _stored_record(signin_env)
    assert record["oauth_metadata"]["token_endpoint"].startswith(peers.issuer)


async def test_sign_in_over_legacy_http_sse(oauth_peers, signin_env) -> None:
    peers = oauth_peers(mcp_args=("--transport", "sse"))
    assert peers.url.endswith("/sse")
    assert await _call(peers, signin_env) == "signed in"
    assert await _call(peers, signin_env) == "signed in"
    assert len(signin_env.browser_opens()) == 1


async def test_a_restart_with_an_expired_token_refreshes_at_the_authorization_server(
    oauth_peers, signin_env
) -> None:
    peers = oauth_peers("--token-lifetime", "3")
    await _call(peers, signin_env)
    await _wait_until_expired(signin_env)
    assert await _call(peers, signin_env) == "signed in"
    assert len(signin_env.browser_opens()) == 1
    assert peers.stats().get("refreshes", 0) >= 1
    assert peers.stats().get("code_exchanges") == 1


async def test_a_running_proxy_refreshes_when_its_token_expires(oauth_peers, signin_env) -> None:
    peers = oauth_peers("--token-lifetime", "3")
    async with open_proxy_session(peers.url, env=signin_env.env) as session:
        assert not (await session.call_tool("whoami", {})).is_error
        await _wait_until_expired(signin_env)
        assert not (await session.call_tool("whoami", {})).is_error
    assert len(signin_env.browser_opens()) == 1
    assert peers.stats().get("refreshes", 0) >= 1


async def test_two_running_proxies_share_one_refresh_of_a_rotating_refresh_token(
    oauth_peers, signin_env
) -> None:
    # Long enough that starting both proxies needs no refresh, and that the one refresh made below is
    # still fresh when the second proxy looks at the store.
    peers = oauth_peers("--token-lifetime", "8")
    await _call(peers, signin_env)
    async with (
        open_proxy_session(peers.url, env=signin_env.env) as first,
        open_proxy_session(peers.url, env=signin_env.env) as second,
    ):
        await _wait_until_expired(signin_env)
        results = []

        async def call(session) -> None:
            results.append(await session.call_tool("whoami", {}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, first)
            tg.start_soon(call, second)
    assert [r.is_error for r in results] == [False, False]
    assert len(signin_env.browser_opens()) == 1, "a rotated refresh token sent someone to the browser"
    assert peers.stats().get("refreshes") == 1


async def test_three_instances_started_together_sign_in_once(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    answers: list[str] = []

    async def one() -> None:
        answers.append(await _call(peers, signin_env))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert answers == ["signed in"] * 3
    assert len(signin_env.browser_opens()) == 1
    stats = peers.stats()
    assert stats.get("registrations") == 1
    assert stats.get("code_exchanges") == 1


async def test_revoked_tokens_lead_to_a_new_sign_in(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    await _call(peers, signin_env)
    peers.revoke_all()
    assert await _call(peers, signin_env) == "signed in"
    assert len(signin_env.browser_opens()) == 2
    assert peers.stats().get("registrations") == 1, "the stored registration should be reused"


async def test_a_user_who_never_approves_gets_an_error_that_says_what_to_do(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    env = {**signin_env.env, "OAUTH_TEST_BROWSER_MODE": "ignore"}
    started = time.monotonic()
    message = await _initialize_error(peers.url, "--oauth-signin-wait", "6", env=env)
    assert time.monotonic() - started < 25
    assert "--login" in message and "sign-in" in message
    assert peers.issuer + "/authorize?" in message, "the sign-in URL is part of the error"
    assert len(signin_env.browser_opens()) == 1


async def test_a_sign_in_finished_after_the_wait_is_used_by_the_next_request(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    env = {**signin_env.env, "OAUTH_TEST_BROWSER_MODE": "ignore"}
    async with open_proxy_session(peers.url, "--oauth-signin-wait", "1", env=env, era="none") as session:
        with pytest.raises(MCPError):
            await session.initialize()
        # The user now approves in the browser the proxy opened: follow the logged URL.
        (opened,) = await _browser_opened(signin_env)
        await anyio.to_thread.run_sync(_follow, opened["url"])
        with anyio.fail_after(20):
            await session.initialize()
        assert not (await session.call_tool("whoami", {})).is_error
    assert len(signin_env.browser_opens()) == 1


async def _browser_opened(signin_env, count: int = 1) -> list[dict]:
    with anyio.fail_after(20):
        while len(opens := signin_env.browser_opens()) < count:
            await anyio.sleep(0.05)  # polling a log another process writes, with a deadline
    return opens


def _follow(url: str) -> None:
    import httpx2

    with httpx2.Client(follow_redirects=True, timeout=10.0) as client:
        assert client.get(url).status_code == 200


async def test_a_server_without_registration_asks_for_a_pre_registered_client(
    oauth_peers, signin_env
) -> None:
    port = free_port()
    peers = oauth_peers(
        "--no-registration",
        "--client-id",
        "desk-client",
        "--redirect-uri",
        f"http://127.0.0.1:{port}/callback",
    )
    message = await _initialize_error(peers.url, env=signin_env.env)
    assert "does not offer client registration" in message
    assert "http://127.0.0.1:" in message and "--oauth-client-id" in message
    assert signin_env.browser_opens() == []

    answer = await _call(
        peers, signin_env, "--oauth-client-id", "desk-client", "--oauth-callback-port", str(port)
    )
    assert answer == "signed in"
    assert peers.stats().get("registrations", 0) == 0


async def test_a_pre_registered_confidential_client_sends_its_secret(
    oauth_peers, signin_env, tmp_path
) -> None:
    port = free_port()
    secret = "s3cr3t-client-value"
    peers = oauth_peers(
        "--no-registration",
        "--client-id",
        "conf-client",
        "--client-secret",
        secret,
        "--redirect-uri",
        f"http://127.0.0.1:{port}/callback",
    )
    secret_file = tmp_path / "client-secret"
    secret_file.write_text(secret + "\n")
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        answer = await _call(
            peers,
            signin_env,
            "--oauth-client-id",
            "conf-client",
            "--oauth-client-secret-file",
            str(secret_file),
            "--oauth-callback-port",
            str(port),
            "--log-level",
            "debug",
            errlog=errlog,
        )
        errlog.seek(0)
        assert secret not in errlog.read()
    assert answer == "signed in"


async def test_the_resource_parameter_can_be_left_out(oauth_peers, signin_env) -> None:
    peers = oauth_peers("--reject-resource", mcp_args=("--no-validate-resource",))
    message = await _initialize_error(peers.url, env=signin_env.env)
    assert "refused the sign-in" in message
    assert await _call(peers, signin_env, "--no-oauth-resource") == "signed in"


async def test_insufficient_scope_steps_up_with_the_union_of_scopes(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    async with open_proxy_session(peers.url, env=signin_env.env) as session:
        assert not (await session.call_tool("whoami", {})).is_error
        result = await session.call_tool("admin_echo", {"text": "hi"})
        assert not result.is_error, result
        assert result.content[0].text == "admin: hi"
        assert not (await session.call_tool("whoami", {})).is_error
    assert len(signin_env.browser_opens()) == 2
    assert set(_stored_record(signin_env)["scope"].split()) >= {"mcp", "admin"}
    # This server registers every client for all its scopes: the step-up keeps the registration.
    assert peers.stats().get("registrations") == 1


async def test_configured_scopes_and_authorize_params_reach_the_authorization_request(
    oauth_peers, signin_env
) -> None:
    peers = oauth_peers()
    await _call(
        peers, signin_env, "--oauth-scopes", "mcp,admin", "--oauth-authorize-params", "prompt=consent,x=1"
    )
    (opened,) = signin_env.browser_opens()
    assert "prompt=consent" in opened["url"] and "x=1" in opened["url"]
    assert "scope=mcp+admin" in opened["url"] or "scope=mcp%20admin" in opened["url"]
    assert await _call(peers, signin_env, tool="admin_echo") == "admin: hi"
    assert len(signin_env.browser_opens()) == 1


async def test_a_static_authorization_header_turns_sign_in_off(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    message = await _initialize_error(
        peers.url, "--header", "Authorization: Bearer not-a-token", env=signin_env.env
    )
    assert "401" in message
    assert signin_env.browser_opens() == []
    assert "401" in await _initialize_error(peers.url, "--auth", "none", env=signin_env.env)
    assert signin_env.browser_opens() == []


async def test_tokens_never_reach_stderr_or_the_debug_log(oauth_peers, signin_env, tmp_path) -> None:
    peers = oauth_peers("--token-lifetime", "3")
    debug_log = tmp_path / "debug.log"
    args = ("--log-level", "debug", "--debug-enabled", "--debug-filename", str(debug_log))
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        await _call(peers, signin_env, *args, errlog=errlog)
        await _wait_until_expired(signin_env)
        await _call(peers, signin_env, *args, errlog=errlog)  # a refresh: new tokens received
        errlog.seek(0)
        text = errlog.read() + debug_log.read_text()
    record = _stored_record(signin_env)
    assert "refreshed the access token" in text and "signed in to" in text
    for secret in (record["access_token"], record["refresh_token"]):
        assert secret and secret not in text
    assert "at-" not in text and "rt-" not in text, "a token value (at-/rt- prefix) reached a log"
