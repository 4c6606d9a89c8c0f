"""Fixtures for the sign-in tests: an authorization server and an MCP server on other ports, the scripted
browser, and the proxy driven by the SDK's stdio client with this test's own token store.

- `oauth_peers(*as_args, mcp_args=())` → `Peers`: starts `tests.servers.oauth_as` and, in front of it,
  `tests.servers.oauth_mcp_server`; both stopped at teardown.
- `signin_env` → the environment every proxy of the test gets: the scripted browser, the browser log, the
  file token backend (`PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring`), this test's HOME/XDG.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.integration.conftest import REPO_ROOT, RunningServer, running_server

BROWSER = Path(__file__).with_name("browser.py")


@dataclass
class Peers:
    """The authorization server (`issuer`) and the MCP server (`url`) in front of it."""

    auth_server: RunningServer
    mcp_server: RunningServer

    @property
    def issuer(self) -> str:
        return self.auth_server.base_url

    @property
    def url(self) -> str:
        return self.mcp_server.base_url + "/mcp"

    def stats(self) -> dict[str, int]:
        response = httpx2.get(self.issuer + "/_stats", timeout=10.0)
        response.raise_for_status()
        return dict(response.json())

    def revoke_all(self) -> None:
        httpx2.post(self.issuer + "/_revoke_all", timeout=10.0).raise_for_status()


@pytest.fixture
def oauth_peers() -> Iterator[Callable[..., Peers]]:
    managers: list[Any] = []

    def start(*as_args: str, mcp_args: tuple[str, ...] = ()) -> Peers:
        as_manager = running_server("tests.servers.oauth_as", "", *as_args)
        auth_server = as_manager.__enter__()
        managers.append(as_manager)
        mcp_manager = running_server(
            "tests.servers.oauth_mcp_server", "/mcp", "--issuer", auth_server.base_url, *mcp_args
        )
        mcp_server = mcp_manager.__enter__()
        managers.append(mcp_manager)
        return Peers(auth_server, mcp_server)

    try:
        yield start
    finally:
        for manager in reversed(managers):
            manager.__exit__(None, None, None)


@dataclass
class SignInEnv:
    """What the proxies of one test share: environment, browser log, token directory."""

    env: dict[str, str]
    browser_log: Path
    token_dir: Path
    extra: dict[str, str] = field(default_factory=dict)

    def browser_opens(self) -> list[dict[str, Any]]:
        if not self.browser_log.exists():
            return []
        return [json.loads(line) for line in self.browser_log.read_text().splitlines() if line.strip()]

    def stored_files(self) -> list[Path]:
        return sorted(self.token_dir.glob("*.json")) if self.token_dir.is_dir() else []


@pytest.fixture
def signin_env(tmp_path: Path) -> SignInEnv:
    browser_log = tmp_path / "browser.log"
    env = {
        "BROWSER": f"{sys.executable} {BROWSER} %s",
        "OAUTH_TEST_BROWSER_LOG": str(browser_log),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "PYTHONPATH": str(REPO_ROOT),
    }
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        env[name] = os.environ[name]
    token_dir = Path(os.environ["XDG_DATA_HOME"]) / "mcp-sse-proxy" / "oauth"
    return SignInEnv(env, browser_log, token_dir)
