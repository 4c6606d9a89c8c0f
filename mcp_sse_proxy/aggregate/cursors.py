"""Opaque, versioned cursors for merged lists served in pages (pure).

A cursor names the list, the version of the merged list it was cut from and an offset. The version is a
digest of the merged list, so any change to what the client would see makes older cursors stale; the
process nonce makes cursors of an earlier run stale too. A stale or forged cursor gets -32602.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class CursorError(ValueError):
    """A cursor this process did not issue for the current version of the list."""


def list_version(items: Sequence[Any]) -> str:
    """A short digest of a merged list, changing whenever any item changes."""
    encoded = json.dumps(items, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    next_cursor: str | None


class Pager:
    """Cuts merged lists into pages of `size` items (None: one page, no cursor)."""

    def __init__(self, size: int | None, nonce: str | None = None) -> None:
        if size is not None and size < 1:
            raise ValueError("page size must be at least 1")
        self.size = size
        self._nonce = nonce if nonce is not None else secrets.token_hex(4)

    def encode(self, kind: str, version: str, offset: int) -> str:
        payload = json.dumps([self._nonce, kind, version, offset], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")

    def decode(self, kind: str, version: str, cursor: str) -> int:
        """The offset a cursor points at; `CursorError` if it is not valid for this list version."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            nonce, cursor_kind, cursor_version, offset = json.loads(base64.urlsafe_b64decode(padded))
        except (ValueError, TypeError) as exc:
            raise CursorError(f"invalid cursor {cursor!r}") from exc
        if nonce != self._nonce or cursor_kind != kind or not isinstance(offset, int) or offset < 0:
            raise CursorError(f"invalid cursor {cursor!r}")
        if cursor_version != version:
            raise CursorError("the list changed since this cursor was issued; list again from the start")
        return offset

    def page(self, kind: str, items: list[Any], cursor: str | None) -> Page:
        """The page of `items` at `cursor` (None: the first page)."""
        version = list_version(items)
        offset = 0 if cursor is None else self.decode(kind, version, cursor)
        if self.size is None:
            if offset:
                raise CursorError(f"invalid cursor {cursor!r}")
            return Page(items, None)
        end = offset + self.size
        return Page(items[offset:end], self.encode(kind, version, end) if end < len(items) else None)
