"""The interface every upstream transport offers the relay.

What an upstream can do is declared here as attributes and methods, never discovered through its class,
its display name or `getattr`: the relay core decides on these declarations alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from ..protocol.messages import JsonId, Message

#: Called for every message the server sends, on whichever stream it arrives.
Deliver = Callable[[Message], Awaitable[None]]
#: Called once when the upstream session ends on its own (stream closed, server restarted).
SessionLostCallback = Callable[[str], None]


class Upstream(Protocol):
    """One connection to a remote MCP server, possibly spanning several server sessions."""

    #: For logs and `--check` only ("sse", "streamable-http", "... via bridge"); never tested by code.
    name: str
    #: The URL messages are sent to (after detection).
    url: str
    #: Answers travel on one shared stream (legacy SSE, or a bridge over it): when the session is lost,
    #: no request sent on it will be answered, so the relay fails them at once instead of waiting.
    loses_in_flight_on_session_loss: bool
    #: A 2026-07-28 client's cancellation must be sent upstream as `notifications/cancelled` (the upstream
    #: is a handshake-era server behind a bridge) rather than being the closing of the response stream.
    cancels_by_notification: bool

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

    def forget(self, request_id: JsonId) -> None:
        """The relay gave up on this request (client cancel or timeout): drop every per-call state kept
        for it, so a later server request or answer is never tied to it. Unknown ids are ignored."""

    async def close(self) -> None:
        """End the session politely (bounded in time) and release connections."""


class BridgedUpstream(Upstream, Protocol):
    """An upstream an era bridge drives: one exchange's replies can be handed to the bridge itself.

    A server request sent on a call's own response stream (Streamable HTTP) then reaches `deliver` with the
    call it belongs to; an upstream whose replies all share one stream (legacy SSE) ignores `deliver`, and
    the bridge has to guess. `probing` as in detection: a URL that is not an MCP endpoint raises
    `TransportMismatch` (ignored where the connection already proved it).
    """

    async def send(self, message: Message, *, probing: bool = False, deliver: Deliver | None = None) -> None:
        """As `Upstream.send`, with this exchange's own replies going to `deliver` when given."""
