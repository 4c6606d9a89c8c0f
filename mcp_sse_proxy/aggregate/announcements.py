"""Telling the client what changed in the merged lists: pages of the lists it reads, debounced `list_changed`.

Only lists the client has read can be out of date on its side, so only those are announced. A change is
announced even when the client happened to read the new list before the debounce delay ended: it cannot tell
a read that raced with the change from one that followed it, and a notification it did not need costs one
re-read. In a 2026-07-28 session the notifications travel on the client's `subscriptions/listen` streams that
asked for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.messages import JsonId, Message
from .catalog import CHANGE_NOTIFICATION, MergedLists
from .cursors import CursorError, Pager, list_version
from .router import id_key
from .session import Session
from .settings import LISTEN_FILTER, RequestError, Settings

Write = Callable[[Message], Awaitable[None]]
Spawn = Callable[..., None]


class Announcer:
    def __init__(
        self, lists: MergedLists, session: Session, write: Write, spawn: Spawn, settings: Settings
    ) -> None:
        self._lists = lists
        self._session = session
        self._write = write
        self._spawn = spawn
        self._debounce = settings.debounce
        self._pager = Pager(settings.page_size)
        #: The version of each merged list the client last saw (or was told about).
        self._announced: dict[str, str] = {}
        #: The version of each list at its last announcement (or the client's first read of it): a change
        #: since then is announced even if the client has already read the changed list.
        self._told: dict[str, str] = {}
        self._announcing = False
        #: The client's open `subscriptions/listen` requests: id key → (id, acknowledged filter).
        self._listens: dict[Any, tuple[JsonId, dict[str, Any]]] = {}

    def page(self, kind: str, cursor: object) -> dict[str, Any]:
        """One page of a merged list (the client has now seen this version of it)."""
        listing = self._lists.listing(kind)
        try:
            page = self._pager.page(kind, listing, cursor if isinstance(cursor, str) else None)
        except CursorError as exc:
            raise RequestError(jsonrpc.INVALID_PARAMS, str(exc)) from None
        version = list_version(listing)
        self._announced[kind] = version
        self._told.setdefault(kind, version)
        result: dict[str, Any] = {kind: page.items}
        if page.next_cursor is not None:
            result["nextCursor"] = page.next_cursor
        return result

    def open_listen(self, message: Message) -> Message:
        """A client's `subscriptions/listen`: its acknowledgement; the merged list changes go on it.

        Resource subscriptions are not offered on it (left out of the acknowledgement, as the spec allows).
        """
        assert message.id is not None
        requested = message.params.get("notifications")
        requested = requested if isinstance(requested, dict) else {}
        honoured = {key: True for key in LISTEN_FILTER if requested.get(key) is True}
        self._listens[id_key(message.id)] = (message.id, honoured)
        return jsonrpc.from_obj(eras.listen_acknowledgement(message.id, honoured))

    def close_listen(self, request_id: JsonId) -> bool:
        """The client cancelled one of its listens; False if `request_id` is no listen."""
        return self._listens.pop(id_key(request_id), None) is not None

    def soon(self) -> None:
        """Announce changes after the debounce delay (a profile that flaps within it costs nothing)."""
        if self._announcing:
            return
        self._announcing = True
        self._spawn(self._later)

    async def _later(self) -> None:
        try:
            await anyio.sleep(self._debounce)
        finally:
            self._announcing = False
        await self.changes()

    async def changes(self) -> None:
        """Tell the client about each merged list that changed since it last saw it."""
        if not self._session.client_initialized.is_set():
            return
        notes: list[str] = []
        for kind, version in self._lists.versions().items():
            if kind not in self._announced:
                continue
            if self._announced[kind] != version or self._told[kind] != version:
                self._announced[kind] = self._told[kind] = version
                if CHANGE_NOTIFICATION[kind] not in notes:
                    notes.append(CHANGE_NOTIFICATION[kind])
        for note in notes:
            if not self._session.is_modern:
                await self._write(jsonrpc.notification(note))
                continue
            for listen_id, honoured in list(self._listens.values()):
                if eras.listen_wants(honoured, note, None):
                    await self._write(jsonrpc.notification(note, eras.tag_subscription(None, listen_id)))
