"""The second test authorization server: the certified OpenID provider `oidc-provider` (Node), with an SDK MCP
server in front of it on another port (`tests/servers/oidc/provider.js`, `tests/servers/oidc_mcp_server.py`).

Use the `oidc_stack` fixture (import it into a conftest or test module: `from tests.oauth.oidc_peer import
oidc_stack_fixture`; tests then take a parameter `oidc_stack`) or `start_oidc_stack(...)` for other options.
Node is required: without it the fixture fails with a message saying so (CI has Node). `npm ci` runs once
when `node_modules` is missing or older than the lock file, under a file lock so parallel workers don't race.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.peers import read_ready_line, stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = REPO_ROOT / "tests" / "servers" / "oidc"
START_TIMEOUT = 30.0
NPM_TIMEOUT = 300.0


def node_missing_message() -> str | None:
    """Why the provider cannot run here, or None."""
    if shutil.which("node") is None:
        return "the oidc-provider tests need Node.js >= 20 on PATH (`node` not found); CI installs it"
    return None


def ensure_node_modules() -> None:
    """`npm ci` in tests/servers/oidc/ unless node_modules matches the committed lock file already."""
    installed = PROVIDER_DIR / "node_modules" / ".package-lock.json"
    lock = PROVIDER_DIR / "package-lock.json"

    def current() -> bool:
        return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime

    if current():
        return
    if shutil.which("npm") is None:
        pytest.fail("tests/servers/oidc/node_modules is missing and `npm` is not on PATH to install it")
    with (PROVIDER_DIR / ".npm-ci.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if current():
            return
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PROVIDER_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci in {PROVIDER_DIR} failed:\n{result.stdout}\n{result.stderr}")


@dataclass
class _Process:
    process: subprocess.Popen[bytes]
    port: int
    stderr_path: Path

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")


#: Start attempts: once on a loaded CI machine a provider printed nothing for 30 s (its stderr held only
#: the Node version warning); a second, fresh process is cheaper than a lost run.
START_ATTEMPTS = 2


@contextmanager
def _spawn(argv: list[str], env: Mapping[str, str], cwd: Path, name: str) -> Iterator[_Process]:
    """Start `argv`, wait for its `READY <port>` line; stop and reap it on exit."""
    with tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".stderr", delete=False) as err:
        stderr_path = Path(err.name)
    process: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            with stderr_path.open("wb") as stderr:
                process = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env={**os.environ, **env},
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                )
            try:
                port = read_ready_line(process, START_TIMEOUT)
                break
            except (TimeoutError, RuntimeError) as exc:
                if isinstance(exc, RuntimeError) or attempt == START_ATTEMPTS:
                    raise RuntimeError(f"{name} did not start: {exc}\n{stderr_path.read_text()}") from exc
                stop_process(process)
                sys.stderr.write(
                    f"{name} printed no READY line within {START_TIMEOUT} s: starting it again\n"
                )
        assert process is not None
        yield _Process(process, port, stderr_path)
    finally:
        if process is not None:
            stop_process(process)
        stderr_path.unlink(missing_ok=True)


@dataclass
class OidcStack:
    """A running provider (`issuer`) and the MCP server that trusts it (`mcp_url`).

    Settings change at run time through the provider's test-only control endpoint; see `configure`.
    """

    issuer: str
    mcp_url: str
    provider: _Process
    mcp_server: _Process
    _exit: ExitStack

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document."""
        response = httpx2.get(self.metadata_url, timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change provider settings: access_token_ttl (s), access_token_format ('jwt'|'opaque'),
        device_interval (s), approve (False: every interaction is denied),
        reject_resource_parameter, default_resource, slow_down_polls (n), scope_policy ('any': a client may
        ask for scopes it did not register, 'registered': only those). Returns all settings."""
        response = httpx2.post(f"{self.issuer}/_test/settings", json=settings, timeout=10)
        response.raise_for_status()
        return response.json()

    def set_token_ttl(self, seconds: int) -> None:
        """Access tokens issued from now on live `seconds`."""
        self.configure(access_token_ttl=seconds)

    def stats(self) -> dict[str, Any]:
        """Counters: registrations, interactions, authorizations, tokens (per grant_type), devicePolls,
        cimdFetches (Client ID Metadata Documents served from OIDC_CIMD_DOCUMENTS)."""
        response = httpx2.get(f"{self.issuer}/_test/stats", timeout=10)
        response.raise_for_status()
        return response.json()

    def revoke_grants(self) -> int:
        """Revoke every grant (refresh tokens, opaque access tokens): the user withdrew consent."""
        response = httpx2.post(f"{self.issuer}/_test/revoke-grants", timeout=10)
        response.raise_for_status()
        return int(response.json()["revoked"])

    def stderr_text(self) -> str:
        return f"provider:\n{self.provider.stderr_text()}\nmcp server:\n{self.mcp_server.stderr_text()}"

    def stop(self) -> None:
        """Stop both servers (also done when the fixture or `start_oidc_stack` block ends)."""
        self._exit.close()


@contextmanager
def start_oidc_stack(
    *,
    access_token_ttl: int = 3600,
    access_token_format: str = "jwt",
    registration: bool = True,
    clients: list[dict[str, Any]] | None = None,
    device_code_ttl: int = 600,
    env: Mapping[str, str] | None = None,
) -> Iterator[OidcStack]:
    """Start the provider and, on another port, the MCP server verifying its tokens (by introspection when
    `access_token_format` is 'opaque'). `clients` are pre-registered (static) clients; `registration=False`
    turns dynamic registration off; `env` adds OIDC_* variables (see provider.js)."""
    reason = node_missing_message()
    if reason is not None:
        pytest.fail(reason)
    ensure_node_modules()
    rs_secret = secrets.token_urlsafe(24)
    provider_env = {
        "OIDC_ACCESS_TOKEN_TTL": str(access_token_ttl),
        "OIDC_ACCESS_TOKEN_FORMAT": access_token_format,
        "OIDC_REGISTRATION": "on" if registration else "off",
        "OIDC_DEVICE_CODE_TTL": str(device_code_ttl),
        "OIDC_RS_CLIENT_SECRET": rs_secret,
        **({"OIDC_CLIENTS": json.dumps(clients)} if clients else {}),
        **(env or {}),
    }
    verify = "introspection" if access_token_format == "opaque" else "jwt"
    with ExitStack() as stack:
        provider = stack.enter_context(
            _spawn(
                ["node", "provider.js", "--port", "0", "--exit-with-stdin"],
                provider_env,
                PROVIDER_DIR,
                "oidc-provider",
            )
        )
        issuer = f"http://127.0.0.1:{provider.port}"
        mcp_server = stack.enter_context(
            _spawn(
                [
                    sys.executable,
                    "-m",
                    "tests.servers.oidc_mcp_server",
                    "--issuer",
                    issuer,
                    "--verify",
                    verify,
                ],
                {"OIDC_RS_CLIENT_SECRET": rs_secret},
                REPO_ROOT,
                "oidc-mcp-server",
            )
        )
        yield OidcStack(
            issuer=issuer,
            mcp_url=f"http://127.0.0.1:{mcp_server.port}/mcp",
            provider=provider,
            mcp_server=mcp_server,
            _exit=stack,
        )


@pytest.fixture(name="oidc_stack")
def oidc_stack_fixture() -> Iterator[OidcStack]:
    """A fresh provider + MCP server per test (JWT access tokens living an hour; dynamic registration on)."""
    with start_oidc_stack() as stack:
        yield stack
