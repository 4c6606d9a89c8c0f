"""Signing in through the proxy against the SDK-built authorization server (real peers on 127.0.0.1)."""

from __future__ import annotations

import stat
import tempfile

import pytest

from tests.integration.conftest import open_proxy_session

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


async def _call_whoami(peers, signin_env, *args: str, errlog=None) -> str:
    async with open_proxy_session(peers.url, *args, env=signin_env.env, errlog=errlog) as session:
        result = await session.call_tool("whoami", {})
        assert not result.is_error, result
        return result.content[0].text


async def test_first_sign_in_opens_the_browser_once_and_a_second_process_reuses_the_token(
    oauth_peers, signin_env
) -> None:
    peers = oauth_peers()
    assert await _call_whoami(peers, signin_env) == "signed in"
    assert len(signin_env.browser_opens()) == 1
    assert peers.stats().get("registrations") == 1

    assert await _call_whoami(peers, signin_env) == "signed in"
    assert len(signin_env.browser_opens()) == 1, "the second process signed in again"
    assert peers.stats().get("code_exchanges") == 1

    files = signin_env.stored_files()
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700


async def test_tokens_never_reach_stderr(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        await _call_whoami(peers, signin_env, "--log-level", "debug", errlog=errlog)
        errlog.seek(0)
        text = errlog.read()
    record = _stored_record(signin_env)
    assert record["access_token"] and record["access_token"] not in text
    assert record["refresh_token"] not in text
    assert "signed in to" in text


def _stored_record(signin_env) -> dict:
    import json

    (path,) = signin_env.stored_files()
    return json.loads(path.read_text())["record"]
