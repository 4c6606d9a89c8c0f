"""Matches the server's answers to the check's own requests, and answers the server's requests to the check."""

from __future__ import annotations

import anyio
from anyio.abc import TaskGroup

from ..errors import SessionLost, UpstreamError
from ..protocol import messages as jsonrpc
from ..protocol.messages import JsonId, Kind, Message
from ..transports.base import Upstream

CLIENT_NAME = "mcp-sse-proxy-check"
#: Bound on answering one server request (the check's own requests carry their own timeouts).
ANSWER_TIMEOUT = 5.0


class Replies:
    """The check's side of one session: `deliver` and `on_lost` are the upstream's callbacks."""

    def __init__(self, task_group: TaskGroup) -> None:
        self._tg = task_group
        self._count = 0
        self._events: dict[JsonId | None, anyio.Event] = {}
        self._replies: dict[JsonId | None, Message] = {}
        self.lost_reason: str | None = None
        self.upstream: Upstream | None = None

    def request(self, method: str, params: dict | None = None) -> Message:
        """A new request of the check's, expected to be answered."""
        self._count += 1
        message = jsonrpc.request(f"check-{self._count}", method, params)
        self._events[message.id] = anyio.Event()
        return message

    async def deliver(self, message: Message) -> None:
        if message.kind is Kind.RESPONSE and message.id in self._events:
            self._replies[message.id] = message
            self._events[message.id].set()
        elif message.kind is Kind.REQUEST and self.upstream is not None:
            self._tg.start_soon(self._answer, message)

    async def _answer(self, request: Message) -> None:
        assert request.id is not None and self.upstream is not None
        if request.method == "ping":
            reply = jsonrpc.from_obj({"jsonrpc": "2.0", "id": request.id, "result": {}})
        else:
            reply = jsonrpc.error_response(
                request.id, jsonrpc.METHOD_NOT_FOUND, f"{CLIENT_NAME} does not handle {request.method}"
            )
        with anyio.move_on_after(ANSWER_TIMEOUT):
            try:
                await self.upstream.send(reply)
            except UpstreamError:
                pass  # the request being checked reports the session's trouble

    def on_lost(self, reason: str) -> None:
        self.lost_reason = reason
        for event in self._events.values():
            event.set()

    async def wait(self, message: Message) -> Message:
        """The answer to `message`; raises `SessionLost` if the session ended first (the caller bounds it)."""
        await self._events[message.id].wait()
        self._events.pop(message.id, None)
        reply = self._replies.pop(message.id, None)
        if reply is None:
            raise SessionLost(f"the server ended the session: {self.lost_reason or 'no reason given'}")
        return reply
