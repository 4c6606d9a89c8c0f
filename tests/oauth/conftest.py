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
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.integration.conftest import REPO_ROOT, RunningServer, proxy_environment, running_server

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
        return self.mcp_server.url

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
        path = "/sse" if "sse" in mcp_args else "/mcp"
        mcp_manager = running_server(
            "tests.servers.oauth_mcp_server", path, "--issuer", auth_server.base_url, *mcp_args
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


@asynccontextmanager
async def open_profiles_session(
    *args: str,
    env: dict[str, str],
    errlog: IO[str] | None = None,
    initialize: bool = True,
    **callbacks: Any,
) -> AsyncIterator[ClientSession]:
    """The proxy started with `args` alone (no --sse-url; e.g. `--profile a,b`) under the SDK's stdio client
    (`callbacks`: ClientSession's, such as `elicitation_callback` and `message_handler`)."""
    own = errlog is None
    log_file: IO[str] = errlog if errlog is not None else tempfile.TemporaryFile("w+", encoding="utf-8")
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_sse_proxy", *args], env=proxy_environment(env), cwd=REPO_ROOT
    )
    try:
        async with stdio_client(params, errlog=log_file) as (read_stream, write_stream):
            async with ClientSession(
                read_stream, write_stream, read_timeout_seconds=30.0, **callbacks
            ) as session:
                if initialize:
                    with anyio.fail_after(30.0):
                        await session.initialize()
                yield session
    except BaseException:
        if own:
            log_file.seek(0)
            sys.stderr.write(f"--- proxy stderr ---\n{log_file.read()[-20000:]}\n--- end ---\n")
        raise
    finally:
        if own:
            log_file.close()


def run_cli(*args: str, env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`mcp-sse-proxy ARGS` as a subprocess (stdin closed), with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "mcp_sse_proxy", *args],
        env=proxy_environment(env),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    """A port that was free a moment ago (for a pre-registered redirect URI; the proxy falls back safely)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
