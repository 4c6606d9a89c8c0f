"""Signing in with tokens kept in a real `keyring` backend (keyrings.alt's file keyring, chosen with
PYTHON_KEYRING_BACKEND as a user would), against the SDK's authorization server: --login stores them there,
a proxy process reuses them without a browser, a refresh rotates them, --logout removes them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import anyio
import keyrings.alt.file  # noqa: F401  (the test extra: a missing backend fails, never skips)
import pytest

from tests.integration.conftest import open_proxy_session
from tests.oauth.conftest import run_cli

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def _keyring_file() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "python_keyring" / "keyring_pass.cfg"


async def test_tokens_live_in_the_keyring_from_login_to_logout(oauth_peers, signin_env) -> None:
    peers = oauth_peers("--token-lifetime", "3")
    env = {**signin_env.env, "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring"}
    login = run_cli("--sse-url", peers.url, "--login", env=env)
    assert login.returncode == 0, login.stderr

    (entry_file,) = signin_env.stored_files()
    entry = json.loads(entry_file.read_text())
    assert entry["backend"] == "keyring" and "record" not in entry
    key = entry_file.stem
    held = _keyring_file().read_text()
    assert key in held, "the record is a keyring entry under its key"
    assert entry["summary"]["has_refresh_token"] is True

    # Let the 3 s token expire: the proxy refreshes (no browser) and the rotated tokens go back to the keyring.
    with anyio.fail_after(30):
        while time.time() < entry["summary"]["expires_at"] + 0.2:
            await anyio.sleep(0.1)
    before = held
    async with open_proxy_session(peers.url, env=env) as session:
        result = await session.call_tool("whoami", {})
        assert not result.is_error and result.content[0].text == "signed in"
    assert len(signin_env.browser_opens()) == 1, "reuse and refresh open no browser"
    assert peers.stats().get("refreshes", 0) >= 1
    assert _keyring_file().read_text() != before, "the refreshed tokens replaced the entry"
    entry = json.loads(entry_file.read_text())
    assert entry["backend"] == "keyring" and "record" not in entry

    logout = run_cli("--sse-url", peers.url, "--logout", env=env)
    assert logout.returncode == 0 and "signed out" in logout.stdout
    assert key not in _keyring_file().read_text() and signin_env.stored_files() == []
