"""Tokens at rest in a real `keyring` backend: `keyrings.alt`'s file keyring (a test-extra dependency; it
works on a Linux box without a desktop session), selected through PYTHON_KEYRING_BACKEND as a user would, in
this test's own XDG data directory. Then the fallback to the 0600 file when the backend refuses."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.core
import keyring.errors
import keyrings.alt.file  # noqa: F401  (the test extra: a missing backend fails, never skips)
import pytest
from keyring.backend import KeyringBackend

from mcp_sse_proxy.auth.record import TokenRecord
from mcp_sse_proxy.auth.store import KEYRING_SERVICE, TokenStore, keyring_available

ALT_BACKEND = "keyrings.alt.file.PlaintextKeyring"


@pytest.fixture
def alt_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """keyrings.alt's file keyring as `keyring`'s backend; yields the file it keeps its entries in."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", ALT_BACKEND)
    keyring.core.init_backend()
    backend = keyring.get_keyring()
    assert type(backend).__module__ + "." + type(backend).__name__ == ALT_BACKEND
    path = Path(backend.file_path)  # type: ignore[attr-defined]
    assert str(path).startswith(os.environ["XDG_DATA_HOME"]), "the test's own data directory"
    try:
        yield path
    finally:
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        keyring.core.init_backend()


def _record(access: str = "at-secret-1", refresh: str = "rt-secret-1") -> TokenRecord:
    return TokenRecord(
        "k1", "http://h/mcp", issuer="http://as", access_token=access, refresh_token=refresh, scope="mcp"
    )


def test_a_real_backend_holds_the_tokens_and_the_file_only_the_summary(tmp_path: Path, alt_keyring) -> None:
    assert keyring_available()
    store = TokenStore(tmp_path / "oauth", preference="auto")
    assert store.save(_record()) == "keyring"

    entry_file = tmp_path / "oauth" / "k1.json"
    entry = json.loads(entry_file.read_text())
    assert entry["backend"] == "keyring" and "record" not in entry
    assert "at-secret-1" not in entry_file.read_text() and "rt-secret-1" not in entry_file.read_text()
    assert stat.S_IMODE(entry_file.stat().st_mode) == 0o600
    assert entry["summary"]["issuer"] == "http://as" and entry["summary"]["has_refresh_token"] is True

    # Through the keyring API itself: the entry is there, under the service and the key.
    held = json.loads(keyring.get_password(KEYRING_SERVICE, "k1") or "{}")
    assert held["access_token"] == "at-secret-1" and held["refresh_token"] == "rt-secret-1"
    assert alt_keyring.is_file()

    loaded = store.load("k1")
    assert loaded is not None and (loaded.access_token, loaded.refresh_token) == (
        "at-secret-1",
        "rt-secret-1",
    )


def test_rotation_replaces_the_keyring_entry(tmp_path: Path, alt_keyring) -> None:
    store = TokenStore(tmp_path / "oauth", preference="auto")
    store.save(_record())
    store.save(_record("at-secret-2", "rt-secret-2"))
    loaded = store.load("k1")
    assert loaded is not None and (loaded.access_token, loaded.refresh_token) == (
        "at-secret-2",
        "rt-secret-2",
    )
    held = json.loads(keyring.get_password(KEYRING_SERVICE, "k1") or "{}")
    assert held["refresh_token"] == "rt-secret-2"
    assert "rt-secret-1" not in (tmp_path / "oauth" / "k1.json").read_text()


def test_logout_deletes_the_keyring_entry_and_the_summary(tmp_path: Path, alt_keyring) -> None:
    store = TokenStore(tmp_path / "oauth", preference="auto")
    store.save(_record())
    assert store.delete("k1")
    assert keyring.get_password(KEYRING_SERVICE, "k1") is None
    assert store.load("k1") is None and list((tmp_path / "oauth").glob("*.json")) == []


class RefusingKeyring(KeyringBackend):
    """A backend that looks real (positive priority) but refuses every write, like a locked keychain."""

    priority = 5  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError("locked")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.PasswordDeleteError("locked")


@pytest.fixture
def refusing_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(RefusingKeyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def test_a_refusing_backend_falls_back_to_the_private_file(tmp_path: Path, refusing_keyring, caplog) -> None:
    assert keyring_available()
    store = TokenStore(tmp_path / "oauth", preference="auto")
    assert store.save(_record()) == "file"
    entry = json.loads((tmp_path / "oauth" / "k1.json").read_text())
    assert entry["backend"] == "file" and entry["record"]["access_token"] == "at-secret-1"
    loaded = store.load("k1")
    assert loaded is not None and loaded.access_token == "at-secret-1"
    assert "PasswordSetError" in caplog.text and "at-secret-1" not in caplog.text


def test_an_unreadable_keyring_entry_reads_as_signed_out(tmp_path: Path, alt_keyring, caplog) -> None:
    store = TokenStore(tmp_path / "oauth", preference="auto")
    store.save(_record())
    keyring.set_keyring(RefusingKeyring())
    assert store.load("k1") is None, "a locked store means signing in again, not a crash"
    assert "KeyringLocked" in caplog.text
