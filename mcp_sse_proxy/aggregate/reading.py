"""Reading each profile's lists into the merged lists: all pages at a join, the changed ones after a
`list_changed` (debounced), the tools at a 2026-07-28 health check."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from .catalog import CAPABILITY, KINDS, LIST_METHODS, PROMPTS, TOOLS, MergedLists
from .member import Member, MemberError
from .names import SEPARATOR
from .settings import Settings

log = logging.getLogger("mcp_sse_proxy.aggregate")

OwnParams = Callable[[dict[str, Any] | None], dict[str, Any] | None]


class ListReader:
    def __init__(
        self,
        lists: MergedLists,
        settings: Settings,
        own_params: OwnParams,
        announce: Callable[[], Awaitable[None]],
        spawn: Callable[..., None],
    ) -> None:
        self._lists = lists
        self._settings = settings
        self._own_params = own_params
        self._announce = announce
        self._spawn = spawn

    async def load(self, member: Member, kinds: Sequence[str]) -> None:
        """Re-read `kinds` of a profile to their last page; `MemberError` if it cannot be reached."""
        for kind in kinds:
            if CAPABILITY[kind] not in member.capabilities:
                self._lists.set_list(member.alias, kind, [])
                continue
            try:
                items = await self.read_all(member, kind)
            except MemberError as exc:
                if exc.unreachable:
                    raise
                log.warning("profile %s: %s; showing none", member.alias, exc.reason)
                items = []
            self._lists.set_list(member.alias, kind, items)
            if kind in (TOOLS, PROMPTS):
                self._log_names(member, kind)

    def _log_names(self, member: Member, kind: str) -> None:
        """The name mapping at info level: how many names, and each one that is not plain `alias__name`."""
        table = self._lists.tools if kind == TOOLS else self._lists.prompts
        mapping = table.mapping(member.alias)
        renamed = [
            f"{original!r} as {exposed}"
            for original, exposed in mapping.items()
            if exposed != f"{member.alias}{SEPARATOR}{original}"
        ]
        log.info(
            "profile %s: %d %s exposed as %s%s<name>%s",
            member.alias,
            len(mapping),
            kind,
            member.alias,
            SEPARATOR,
            ("; renamed: " + ", ".join(renamed)) if renamed else "",
        )

    async def read_all(self, member: Member, kind: str, timeout: float | None = None) -> list[Any]:
        items: list[Any] = []
        seen: set[str] = set()
        cursor: str | None = None
        method = LIST_METHODS[kind]
        for _ in range(self._settings.max_pages):
            params = {"cursor": cursor} if cursor is not None else None
            result = await member.request(
                method, self._own_params(params), timeout or self._settings.list_timeout
            )
            page = result.get(kind)
            if isinstance(page, list):
                items.extend(page)
            next_cursor = result.get("nextCursor")
            if not isinstance(next_cursor, str) or not next_cursor:
                return items
            if next_cursor in seen:
                log.warning(
                    "profile %s: %s repeats cursor %r; stopping there", member.alias, method, next_cursor
                )
                return items
            seen.add(next_cursor)
            cursor = next_cursor
        log.warning(
            "profile %s: %s has over %d pages; showing the first ones",
            member.alias,
            method,
            self._settings.max_pages,
        )
        return items

    def changed(self, member: Member, kinds: set[str]) -> None:
        """A profile announced `list_changed`: re-read those lists after the debounce delay."""
        if not member.is_up:
            member.poke()  # a relay announces lists after rebuilding a session: the profile may be back
            return
        if member.mark_dirty(kinds):
            self._spawn(self._reload, member)

    async def _reload(self, member: Member) -> None:
        try:
            await anyio.sleep(self._settings.debounce)
            while member.is_up:
                kinds = member.take_dirty(KINDS)
                if not kinds:
                    break
                try:
                    await self.load(member, kinds)
                except MemberError:
                    member.poke()
                    return
                await self._announce()
        finally:
            member.reload_finished()
