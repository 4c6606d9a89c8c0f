"""aggregate.announcements.Announcer as pure state: which merged-list changes reach the client, and when.

A change must be announced even when the client read the changed list before the debounced announcement
ran: on the asyncio network backend a killed profile is noticed before the client's next read, and the
announcement used to be dropped (issue 21, `test_a_modern_session_survives_a_killed_profile[sse]`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio

from mcp_sse_proxy.aggregate.announcements import Announcer
from mcp_sse_proxy.aggregate.catalog import TOOLS, MergedLists, Source
from mcp_sse_proxy.aggregate.settings import Settings
from mcp_sse_proxy.protocol.messages import Message


def _setup() -> tuple[Announcer, MergedLists, list[Message]]:
    lists = MergedLists([Source("a"), Source("b")])
    for alias in ("a", "b"):
        lists.set_list(alias, TOOLS, [{"name": "echo", "inputSchema": {"type": "object"}}])
        lists.set_up(alias, True)
    session: Any = SimpleNamespace(client_initialized=anyio.Event(), is_modern=False)
    session.client_initialized.set()
    written: list[Message] = []

    async def write(message: Message) -> None:
        written.append(message)

    announcer = Announcer(lists, session, write, lambda *args: None, Settings())
    return announcer, lists, written


def _methods(written: list[Message]) -> list[str | None]:
    return [message.method for message in written]


def test_a_change_the_client_already_read_is_still_announced() -> None:
    async def main() -> None:
        announcer, lists, written = _setup()
        announcer.page(TOOLS, None)
        lists.set_up("b", False)
        assert len(announcer.page(TOOLS, None)[TOOLS]) == 1  # the client reads before the debounce ends
        await announcer.changes()
        assert _methods(written) == ["notifications/tools/list_changed"]
        await announcer.changes()
        assert len(written) == 1  # once per change

    anyio.run(main)


def test_a_flap_within_the_debounce_costs_nothing_unless_the_client_saw_it() -> None:
    async def main() -> None:
        announcer, lists, written = _setup()
        announcer.page(TOOLS, None)
        lists.set_up("b", False)
        lists.set_up("b", True)
        await announcer.changes()
        assert written == []
        lists.set_up("b", False)
        announcer.page(TOOLS, None)  # the client saw b gone; b comes back before the announcement
        lists.set_up("b", True)
        await announcer.changes()
        assert _methods(written) == ["notifications/tools/list_changed"]

    anyio.run(main)


def test_a_list_the_client_never_read_is_not_announced() -> None:
    async def main() -> None:
        announcer, lists, written = _setup()
        lists.set_up("b", False)
        await announcer.changes()
        assert written == []

    anyio.run(main)
