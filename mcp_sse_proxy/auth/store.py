"""Token storage: the OS credential store (`keyring`) where a real one exists, else a private file.

Layout under the user data directory (`~/.local/share/mcp-sse-proxy/oauth` on Linux; 0700):
`<key>.json` (0600, written atomically) holds the record's public summary and which backend keeps the
secret part. With the file backend the whole record sits in that file; with keyring the record is one
keyring entry (service `mcp-sse-proxy`, user `<key>`). The public part is read first, so a profile whose
token is absent or expired never imports `keyring` (~80 ms) to find out. Every secret read or written is
handed to the redaction step at once.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from .record import TokenRecord, keep_secret

APP_NAME = "mcp-sse-proxy"
KEYRING_SERVICE = "mcp-sse-proxy"
Backend = Literal["file", "keyring"]
#: A directory changed this recently has no trustworthy `TokenStore.version` yet.
RACY_NS = 2_000_000_000

log = logging.getLogger("mcp_sse_proxy.auth")


def default_directory() -> Path:
    """`$XDG_DATA_HOME/mcp-sse-proxy/oauth` on Linux, the platform's equivalent elsewhere."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False) / "oauth"


class TokenStore:
    """Records by key, in the directory given (created 0700 on first write)."""

    def __init__(self, directory: Path | None = None, preference: str = "auto") -> None:
        self.directory = directory or default_directory()
        self.preference = preference

    # --- reading ---------------------------------------------------------------------------------------

    def version(self) -> tuple[int, int] | None:
        """What changes whenever a record is created, replaced or removed here (the directory's mtime and
        inode; (0, 0) while there is no directory), or None when the directory changed in the last
        `RACY_NS` (file times are coarse: a change in the same tick would not show)."""
        try:
            info = os.stat(self.directory)
        except OSError:
            return (0, 0)
        if time.time_ns() - info.st_mtime_ns < RACY_NS:
            return None
        return info.st_mtime_ns, info.st_ino

    def summary(self, key: str) -> dict[str, Any] | None:
        """The public part of a record (no secret), or None."""
        entry = self._read_entry(key)
        return entry.get("summary") if entry is not None else None

    def load(self, key: str) -> TokenRecord | None:
        """The whole record, or None when nothing (readable) is stored."""
        entry = self._read_entry(key)
        if entry is None:
            return None
        data: Any = entry.get("record")
        if entry.get("backend") == "keyring":
            data = _keyring_get(key)
        if not isinstance(data, dict):
            return None
        try:
            record = TokenRecord.from_json(data)
        except TypeError:
            return None
        for secret in record.secrets():
            keep_secret(secret)
        return record

    def summaries(self) -> Iterator[dict[str, Any]]:
        """Every stored record's public part, oldest file name first."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.json")):
            summary = self.summary(path.stem)
            if summary is not None:
                yield summary

    def _read_entry(self, key: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    # --- writing ---------------------------------------------------------------------------------------

    def save(self, record: TokenRecord) -> Backend:
        """Store `record` (replacing what was there); the backend that holds its secrets."""
        for secret in record.secrets():
            keep_secret(secret)
        backend = self._backend_for_write()
        entry: dict[str, Any] = {"backend": backend, "summary": record.summary()}
        if backend == "keyring" and not _keyring_set(record.key, json.dumps(record.to_json())):
            backend = "file"
            entry["backend"] = "file"
        if backend == "file":
            entry["record"] = record.to_json()
        self._write_private(self._path(record.key), json.dumps(entry, indent=1))
        return backend

    def delete(self, key: str) -> bool:
        """Forget a record (file and keyring entry); whether there was one."""
        entry = self._read_entry(key)
        if entry is None:
            return False
        if entry.get("backend") == "keyring":
            _keyring_delete(key)
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def lock_path(self, key: str) -> Path:
        """The cross-process lock file of one sign-in."""
        self._ensure_directory()
        return self.directory / f"{key}.lock"

    def _backend_for_write(self) -> Backend:
        if self.preference == "file":
            return "file"
        if self.preference == "keyring" or keyring_available():
            return "keyring"
        return "file"

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def _ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name == "posix":
            os.chmod(self.directory, 0o700)

    def _write_private(self, path: Path, text: str) -> None:
        """Write `text` to `path` with mode 0600, atomically (a reader sees the old or the new file)."""
        self._ensure_directory()
        fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


# --- keyring (imported only when a record lives there or one is about to be written) ---------------------


def keyring_available() -> bool:
    """Whether `keyring` has a real backend here (not the `fail`/`null` ones a headless box gets)."""
    try:
        import keyring  # imported here: ~80 ms, and only a write or a keyring-held record needs it
    except ImportError:
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken keyring configuration means "no keyring", not a failed sign-in
        return False
    module = type(backend).__module__
    if module.endswith((".fail", ".null")):
        return False
    if hasattr(backend, "backends") and not backend.backends:
        return False
    return float(getattr(backend, "priority", 0) or 0) > 0


def _keyring_get(key: str) -> dict[str, Any] | None:
    try:
        import keyring

        text = keyring.get_password(KEYRING_SERVICE, key)
    except Exception as exc:  # locked keychain, no D-Bus session: the record is unreadable, not fatal
        log.warning("cannot read the stored sign-in from the credential store: %s", type(exc).__name__)
        return None
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _keyring_set(key: str, text: str) -> bool:
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, key, text)
    except Exception as exc:
        log.warning(
            "the credential store refused the token (%s); keeping it in a 0600 file", type(exc).__name__
        )
        return False
    return True


def _keyring_delete(key: str) -> None:
    try:
        import keyring

        keyring.delete_password(KEYRING_SERVICE, key)
    except Exception as exc:
        log.debug("could not delete the keyring entry: %s", type(exc).__name__)
