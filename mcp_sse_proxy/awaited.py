"""Requests the proxy sends on its own behalf and the replies it waits for.

The relay's keepalive ping and replayed handshake, and the era bridges' own requests and questions to the
client, all work the same way: an id from the proxy's namespace, the request sent, the task parked until
the reply with that id is handed back by whoever reads the other direction, or its time runs out: every
such wait has a bound (`timeout` is mandatory), so no task of the proxy waits forever on a silent peer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .errors import NoReply
from .protocol import messages as jsonrpc
from .protocol.ids import ProxyIds
from .protocol.messages import Message

Send = Callable[[Message], Awaitable[None]]


class AwaitedReplies:
    """Issues requests under ids from `ids` and pairs each with the reply that comes back for it."""

    def __init__(self, ids: ProxyIds) -> None:
        self._ids = ids
        self._waiting: dict[str, list[Any]] = {}

    async def ask(
        self,
        send: Send,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float,
        asker: str = "proxy",
    ) -> Message:
        """Send `method` with `send` and return its reply; `NoReply` once `timeout` seconds (sending
        included) pass without one. `asker` names who asked in that error ("the proxy's ping")."""
        request_id = self._ids.next()
        done = anyio.Event()
        slot: list[Any] = [done, None]
        self._waiting[request_id] = slot
        try:
            with anyio.move_on_after(timeout):
                await send(jsonrpc.request(request_id, method, params))
                await done.wait()
        finally:
            self._waiting.pop(request_id, None)
        reply: Message | None = slot[1]
        if reply is None:
            raise NoReply(f"no answer to the {asker}'s {method} within {timeout:g} s")
        return reply

    def resolve(self, reply: Message) -> bool:
        """Hand a reply to the request waiting for it; False when it answers nothing of ours."""
        slot = self._waiting.get(reply.id) if isinstance(reply.id, str) else None
        if slot is None:
            return False
        slot[1] = reply
        slot[0].set()
        return True

    def __len__(self) -> int:
        """Requests still waiting for their reply."""
        return len(self._waiting)
