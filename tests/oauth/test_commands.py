"""`--login`, `--logout`, `--auth-status`, `--print-config`, and an aggregate with one OAuth profile."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.integration.conftest import running_server
from tests.oauth.conftest import open_profiles_session, run_cli

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def _record(signin_env) -> dict:
    (path,) = signin_env.stored_files()
    return json.loads(path.read_text())["record"]


def test_login_status_and_logout_from_a_terminal(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    status = run_cli("--sse-url", peers.url, "--auth-status", env=signin_env.env)
    assert status.returncode == 0 and "sign-in needed" in status.stdout

    login = run_cli("--sse-url", peers.url, "--login", env=signin_env.env)
    assert login.returncode == 0, login.stderr
    assert "Open this URL in a browser" in login.stdout and peers.issuer + "/authorize?" in login.stdout
    assert "signed in; issuer " + peers.issuer in login.stdout
    assert len(signin_env.browser_opens()) == 1

    status = run_cli("--sse-url", peers.url, "--auth-status", env=signin_env.env)
    assert status.returncode == 0
    assert f"issuer {peers.issuer}" in status.stdout and "scopes mcp" in status.stdout
    assert "expires " in status.stdout and "refreshable" in status.stdout
    record = _record(signin_env)
    for output in (login.stdout + login.stderr, status.stdout + status.stderr):
        assert record["access_token"] not in output and record["refresh_token"] not in output

    logout = run_cli("--sse-url", peers.url, "--logout", env=signin_env.env)
    assert logout.returncode == 0 and "signed out" in logout.stdout
    assert signin_env.stored_files() == []
    assert "sign-in needed" in run_cli("--sse-url", peers.url, "--auth-status", env=signin_env.env).stdout


def test_login_against_a_server_that_needs_none(signin_env) -> None:
    with running_server("tests.servers.sdk_server", "/mcp", "--transport", "streamable") as server:
        login = run_cli("--sse-url", server.url, "--login", env=signin_env.env)
    assert login.returncode == 0 and "does not ask for sign-in" in login.stdout
    assert signin_env.browser_opens() == []


def test_print_config_masks_the_client_secret(signin_env) -> None:
    secret = "very-secret-client-value"
    env = {**signin_env.env, "ST_PROXY_OAUTH_CLIENT_SECRET": secret}
    shown = run_cli(
        "--sse-url", "http://127.0.0.1:1/mcp", "--oauth-client-id", "desk", "--print-config", env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert secret not in shown.stdout and 'oauth_client_secret: "***"' in shown.stdout
    assert 'oauth_client_id: "desk"' in shown.stdout


async def test_an_aggregate_with_one_oauth_profile_and_one_open_profile(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    with running_server("tests.servers.sdk_server", "/mcp", "--transport", "streamable") as open_server:
        config_dir = Path(os.environ["XDG_CONFIG_HOME"]) / "mcp-sse-proxy"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "servers.yaml").write_text(
            f"profiles:\n  locked:\n    url: {peers.url}\n  open:\n    url: {open_server.url}\n"
        )
        async with open_profiles_session("--profile", "locked,open", env=signin_env.env) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert "open__echo" in names
            result = await session.call_tool("locked__whoami", {})
            assert not result.is_error, result
            assert result.content[0].text == "signed in"
            echoed = await session.call_tool("open__echo", {"text": "x"})
            assert not echoed.is_error
    assert len(signin_env.browser_opens()) == 1


def test_check_reports_sign_in_needed_then_the_stored_sign_in(oauth_peers, signin_env) -> None:
    peers = oauth_peers()
    before = run_cli("--sse-url", peers.url, "--check", env=signin_env.env)
    assert before.returncode == 1
    assert "sign-in to" in before.stdout and "needed" in before.stdout and "--login" in before.stdout
    assert signin_env.browser_opens() == [], "--check must not open a browser"

    assert run_cli("--sse-url", peers.url, "--login", env=signin_env.env).returncode == 0
    after = run_cli("--sse-url", peers.url, "--check", env=signin_env.env)
    assert after.returncode == 0, after.stdout
    assert f"sign-in: issuer {peers.issuer}" in after.stdout and "scopes mcp" in after.stdout
    record = _record(signin_env)
    assert record["access_token"] not in after.stdout + after.stderr
