"""The sign-in link shown in the client's own UI: URL-mode elicitation (MCP 2025-11-25), against the SDK's
authorization server, with the official SDK's `ClientSession` (over stdio to the proxy) as the client.

The client's elicitation callback plays the user: it records what it was shown and accepts (the scripted
browser then completes the sign-in) or declines (the waiting request must fail at once, saying so).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from tests.integration.conftest import open_proxy_session, running_server
from tests.oauth.conftest import open_profiles_session

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


class User:
    """An elicitation callback answering `action`, and a message handler keeping the completions."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.shown: list[types.ElicitRequestURLParams] = []
        self.completed: list[str] = []
        self.completion = anyio.Event()

    async def elicit(self, context: Any, params: Any) -> types.ElicitResult:
        self.shown.append(params)
        return types.ElicitResult(action=self.action)  # type: ignore[arg-type]

    async def messages(self, message: Any) -> None:
        if isinstance(message, types.ElicitCompleteNotification):
            self.completed.append(message.params.elicitation_id)
            self.completion.set()


def _assert_sign_in_link(params: Any, issuer: str) -> None:
    assert params.mode == "url"
    link = urlsplit(params.url)
    assert f"{link.scheme}://{link.netloc}" == issuer and link.path == "/authorize"
    query = parse_qs(link.query)
    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    assert urlsplit(query["redirect_uri"][0]).hostname == "127.0.0.1"
    assert "client_id" in query and "state" in query
    assert "Sign in to" in params.message
    assert params.elicitation_id


async def test_accepted_link_and_the_browser_sign_in_then_completion_is_announced(
    oauth_peers, signin_env
) -> None:
    peers = oauth_peers()
    user = User("accept")
    async with open_proxy_session(
        peers.url, env=signin_env.env, elicitation_callback=user.elicit, message_handler=user.messages
    ) as session:
        result = await session.call_tool("whoami", {})
        assert not result.is_error and result.content[0].text == "signed in"
        with anyio.fail_after(20):
            await user.completion.wait()
    (shown,) = user.shown
    _assert_sign_in_link(shown, peers.issuer)
    assert user.completed == [shown.elicitation_id]
    (opened,) = signin_env.browser_opens()
    assert opened["url"] == shown.url, "the client and the browser show the same link"


async def test_a_declined_link_ends_the_wait_at_once_with_a_clear_error(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    user = User("decline")
    env = {**signin_env.env, "OAUTH_TEST_BROWSER_MODE": "ignore"}  # the browser opens, nobody signs in
    async with open_proxy_session(
        peers.url, "--oauth-signin-wait", "45", env=env, era="none", elicitation_callback=user.elicit
    ) as session:
        started = time.monotonic()
        with anyio.fail_after(40), pytest.raises(MCPError) as caught:
            await session.initialize()
        assert time.monotonic() - started < 30, "decline must not wait for --oauth-signin-wait"
    message = str(caught.value)
    assert "declined in the client" in message and "--login" in message
    assert len(user.shown) == 1
    for path in signin_env.stored_files():  # the registration is kept; no token was issued
        assert json.loads(path.read_text())["summary"]["has_access_token"] is False


async def test_a_cancelled_link_ends_the_wait_too_and_a_retry_asks_again(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    user = User("cancel")
    env = {**signin_env.env, "OAUTH_TEST_BROWSER_MODE": "ignore"}
    async with open_proxy_session(
        peers.url, "--oauth-signin-wait", "45", env=env, era="none", elicitation_callback=user.elicit
    ) as session:
        with anyio.fail_after(40), pytest.raises(MCPError, match="cancelled in the client"):
            await session.initialize()
        user.action = "accept"
        # The user changes their mind: the retry asks again; this time they follow the link themselves.
        async with anyio.create_task_group() as tg:
            tg.start_soon(_follow_when_shown, user, 2)
            with anyio.fail_after(40):
                await session.initialize()
        assert not (await session.call_tool("whoami", {})).is_error
    assert len(user.shown) == 2


async def _follow_when_shown(user: User, count: int) -> None:
    import httpx2

    with anyio.fail_after(30):
        while len(user.shown) < count:
            await anyio.sleep(0.05)  # the callback runs in this process; a list is all it leaves
    url = user.shown[-1].url
    async with httpx2.AsyncClient(follow_redirects=True, timeout=10.0) as client:
        assert (await client.get(url)).status_code == 200


async def test_a_client_without_url_elicitation_gets_none(oauth_peers, signin_env, tmp_path: Path) -> None:
    peers = oauth_peers()
    trace = tmp_path / "trace.jsonl"
    async with open_proxy_session(peers.url, "--trace-file", str(trace), env=signin_env.env) as session:
        assert not (await session.call_tool("whoami", {})).is_error
    methods = [json.loads(line).get("method") for line in trace.read_text().splitlines() if line.strip()]
    assert "tools/call" in methods
    assert "elicitation/create" not in methods and "notifications/elicitation/complete" not in methods


async def test_the_client_answer_never_reaches_the_server(oauth_peers, signin_env, tmp_path: Path) -> None:
    peers = oauth_peers()
    user = User("accept")
    trace = tmp_path / "trace.jsonl"
    async with open_proxy_session(
        peers.url, "--trace-file", str(trace), env=signin_env.env, elicitation_callback=user.elicit
    ) as session:
        assert not (await session.call_tool("whoami", {})).is_error
    records = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    (asked,) = [r for r in records if r.get("method") == "elicitation/create"]
    assert str(asked["id"]).startswith("mcp-sse-proxy-")
    answers = [r for r in records if r.get("id") == asked["id"] and r.get("method") is None]
    assert answers and all(r["direction"] == "client_to_proxy" for r in answers), answers


async def test_an_aggregate_member_shows_its_link_in_the_client(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    user = User("accept")
    with running_server("tests.servers.sdk_server", "/mcp", "--transport", "streamable") as open_server:
        config_dir = Path(os.environ["XDG_CONFIG_HOME"]) / "mcp-sse-proxy"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "servers.yaml").write_text(
            f"profiles:\n  locked:\n    url: {peers.url}\n  open:\n    url: {open_server.url}\n"
        )
        async with open_profiles_session(
            "--profile",
            "locked,open",
            env=signin_env.env,
            elicitation_callback=user.elicit,
            message_handler=user.messages,
        ) as session:
            result = await session.call_tool("locked__whoami", {})
            assert not result.is_error, result
            with anyio.fail_after(20):
                await user.completion.wait()
    (shown,) = user.shown
    _assert_sign_in_link(shown, peers.issuer)
    assert "profile locked" in shown.message
    assert user.completed == [shown.elicitation_id]
