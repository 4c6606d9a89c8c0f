"""A small file remembering which merged profiles were found valid, so later starts skip jsonschema.

Only salted digests are stored (never values), in the user cache directory, created 0600. Any problem
reading or writing the file just means the profile is validated again.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

#: Digests kept: enough for the profiles one user runs, small enough to read in microseconds.
MAX_ENTRIES = 64


class FileValidationMemo:
    """`ValidationMemo` backed by a text file: a salt line, then one digest per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digests: list[str] = []
        self.salt = b""
        try:
            lines = path.read_text(encoding="ascii").split()
        except (OSError, ValueError):
            lines = []
        if lines:
            try:
                self.salt = bytes.fromhex(lines[0])
                self._digests = lines[1:]
            except ValueError:
                self._digests = []
        if not self.salt:
            self.salt = secrets.token_bytes(16)

    @classmethod
    def default(cls) -> FileValidationMemo:
        from platformdirs import user_cache_path

        return cls(user_cache_path("mcp-sse-proxy", appauthor=False) / "validated-profiles")

    def knows(self, digest: str) -> bool:
        return digest in self._digests

    def add(self, digest: str) -> None:
        self._digests = [*(d for d in self._digests if d != digest), digest][-MAX_ENTRIES:]
        text = "\n".join([self.salt.hex(), *self._digests]) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(text)
            os.replace(temporary, self.path)
        except OSError:
            pass  # a read-only home only costs the next start a validation
