"""Exposed names of tools and prompts when several profiles are aggregated (pure).

Every tool and prompt is shown as `alias__name`. Characters outside `[A-Za-z0-9_-]` become `_`; a name longer
than the limit keeps the alias, is cut, and ends in `_` plus 6 hex digits of the SHA-256 of the original name,
so the same original always gets the same exposed name. Names of one profile that still collide all get that
suffix. Routing uses the resulting table, never the string.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,15}$")
SEPARATOR = "__"
HASH_DIGITS = 6
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class AliasError(ValueError):
    """A profile alias that cannot be used for aggregation (bad form or duplicate)."""


def check_aliases(aliases: Sequence[str]) -> None:
    """Raise `AliasError` unless every alias matches `ALIAS_PATTERN` and they are unique ignoring case."""
    seen: dict[str, str] = {}
    for alias in aliases:
        if not ALIAS_PATTERN.match(alias):
            raise AliasError(
                f"alias {alias!r} cannot be used to aggregate profiles: it must start with a letter and hold "
                "at most 16 letters, digits or '-' (set `prefix` in the profile)"
            )
        folded = alias.casefold()
        if folded in seen:
            raise AliasError(f"aliases {seen[folded]!r} and {alias!r} are the same ignoring case")
        seen[folded] = alias


def name_hash(original: str) -> str:
    """The stable 6-hex-digit suffix for `original` (SHA-256 of its UTF-8)."""
    return hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_DIGITS]


def sanitize(name: str) -> str:
    return _UNSAFE.sub("_", name)


def _hashed(alias: str, original: str, limit: int, digits: int = HASH_DIGITS) -> str:
    head = f"{alias}{SEPARATOR}{sanitize(original)}"
    suffix = "_" + hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:digits]
    return head[: max(len(alias) + len(SEPARATOR), limit - len(suffix))] + suffix


def expose(alias: str, original: str, limit: int) -> str:
    """The exposed name of one original name, before collision handling."""
    plain = f"{alias}{SEPARATOR}{sanitize(original)}"
    return plain if len(plain) <= limit else _hashed(alias, original, limit)


def expose_all(alias: str, originals: Iterable[str], limit: int) -> dict[str, str]:
    """Exposed names for one profile's originals: every name that would collide gets a hash suffix.

    Deterministic whatever the order of `originals`. A collision that survives the 6-digit suffix (which
    needs a deliberate choice of names) is broken with longer digests.
    """
    unique = sorted(set(originals))
    result = {original: expose(alias, original, limit) for original in unique}
    digits = HASH_DIGITS
    while True:
        groups: dict[str, list[str]] = {}
        for original, exposed in result.items():
            groups.setdefault(exposed, []).append(original)
        clashing = [names for names in groups.values() if len(names) > 1]
        if not clashing or digits > 64:
            return result
        for names in clashing:
            for original in names:
                result[original] = _hashed(alias, original, limit, digits)
        digits += 2


@dataclass(frozen=True, slots=True)
class Route:
    """Where an exposed name leads: a profile alias and the name the server knows."""

    alias: str
    original: str


class NameTable:
    """Exposed name → `Route` for one kind (tools or prompts) across profiles, and the reverse."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._exposed: dict[str, dict[str, str]] = {}

    def set_profile(self, alias: str, originals: Iterable[str], limit: int) -> dict[str, str]:
        """Replace one profile's names; returns its original → exposed mapping."""
        for exposed in self._exposed.pop(alias, {}).values():
            self._routes.pop(exposed, None)
        mapping = expose_all(alias, originals, limit)
        for original, exposed in mapping.items():
            self._routes[exposed] = Route(alias, original)
        self._exposed[alias] = mapping
        return mapping

    def route(self, exposed: str) -> Route | None:
        return self._routes.get(exposed)

    def exposed(self, alias: str, original: str) -> str | None:
        return self._exposed.get(alias, {}).get(original)

    def mapping(self, alias: str) -> Mapping[str, str]:
        return self._exposed.get(alias, {})
