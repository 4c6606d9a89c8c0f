"""The interface every upstream transport offers the relay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from ..protocol.messages import Message

#: Called for every message the server sends, on whichever stream it arrives.
Deliver = Callable[[Message], Awaitable[None]]
#: Called once when the upstream session ends on its own (stream closed, server restarted).
SessionLostCallback = Callable[[str], None]


class Upstream(Protocol):
    """One connection to a remote MCP server, possibly spanning several server sessions."""

    #: "sse" or "streamable-http", for logs and `--check`.
    name: str
    #: The URL messages are sent to (after detection).
    url: str

    async def open(self) -> None:
        """Start a new server session's transport state (legacy: GET the stream and await `endpoint`).

        Raises `UpstreamError` when that fails. Called again after a session loss.
        """

    async def send(self, message: Message) -> None:
        """Send one client (or proxy) message.

        Returns when the server has accepted it and, for a request answered on the POST itself, once its
        response has been delivered (a stream that ends without it raises `StreamLost`). Raises
        `UpstreamError` subclasses for failures.
        """

    async def close(self) -> None:
        """End the session politely (bounded in time) and release connections."""
