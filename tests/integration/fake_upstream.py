"""An in-process `Upstream` peer and a harness that runs one `Relay` against it over memory streams.

For the relay cases no real server can provoke on demand (a server that hangs in detection, answers a batch
twice, or sends a line that cannot be decoded). `detect.connect` is replaced by the harness, so the relay's
own code runs unchanged from detection on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from mcp_sse_proxy.config.model import Profile
from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.messages import JsonId, Kind, Message
from mcp_sse_proxy.relay import Relay
from mcp_sse_proxy.transports import detect

Answer = Callable[[Message], Awaitable[list[Message] | None]]


async def echo_answer(message: Message) -> list[Message] | None:
    """Answers every request with `{"echo": method}` (tools/list with three tools)."""
    if message.kind is Kind.REQUEST:
        if message.method == "tools/list":
            tools = [{"name": n, "inputSchema": {"type": "object"}} for n in ("read", "write", "secret_rm")]
            return [jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": {"tools": tools}})]
        if message.method == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {}}
            return [jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": result})]
        return [jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": {"echo": message.method}})]
    if message.kind is Kind.BATCH:
        items = [
            {"jsonrpc": "2.0", "id": item["id"], "result": {"echo": item["method"]}}
            for item in message.body
            if "method" in item and "id" in item
        ]
        return [jsonrpc.from_obj(items)] if items else None
    return None


@dataclass
class FakeUpstream:
    """Records what it is sent; answers through `answer` (None: no answer)."""

    deliver: Callable[[Message], Awaitable[None]]
    on_lost: Callable[[str], None]
    answer: Answer | None = echo_answer
    name: str = "fake"
    url: str = "http://127.0.0.1:9/mcp"
    loses_in_flight_on_session_loss: bool = False
    cancels_by_notification: bool = False
    sent: list[Message] = field(default_factory=list)
    forgotten: list[JsonId] = field(default_factory=list)
    got_message: anyio.Event = field(default_factory=anyio.Event)

    async def open(self) -> None:
        pass

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        self.got_message.set()
        self.got_message = anyio.Event()
        if self.answer is not None:
            for reply in await self.answer(message) or []:
                await self.deliver(reply)

    def forget(self, request_id: JsonId) -> None:
        self.forgotten.append(request_id)

    async def close(self) -> None:
        pass

    async def wait_sent(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        with anyio.fail_after(timeout):
            while True:
                for message in self.sent:
                    if predicate(message):
                        return message
                await self.got_message.wait()


Connect = Callable[..., Awaitable[tuple[Any, bool]]]


@dataclass
class Harness:
    """The relay's client side: `send` messages in, `next` what it writes out."""

    relay: Relay
    inbound: Any
    outbound: Any
    upstreams: list[FakeUpstream]
    written: list[dict[str, Any]] = field(default_factory=list)

    @property
    def upstream(self) -> FakeUpstream:
        return self.upstreams[-1]

    async def send(self, obj: Any) -> None:
        await self.inbound.send(jsonrpc.from_obj(obj) if not isinstance(obj, Message) else obj)

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            message: Message = await self.outbound.receive()
        body: dict[str, Any] = message.body
        self.written.append(body)
        return body

    async def until(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        with anyio.fail_after(timeout):
            while True:
                body = await self.next(timeout)
                if predicate(body):
                    return body


def quick_profile(**kwargs: Any) -> Profile:
    defaults: dict[str, Any] = {
        "transport": "streamable-http",
        "ping_interval": 0,
        "reconnect_initial_backoff": 0.05,
        "reconnect_max_backoff": 0.2,
        "queue_timeout": 5.0,
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
    }
    return Profile(name="fake", url="http://127.0.0.1:9/mcp", **(defaults | kwargs))


@asynccontextmanager
async def run_relay(
    monkeypatch: pytest.MonkeyPatch,
    profile: Profile | None = None,
    *,
    answer: Answer | None = echo_answer,
    connect: Connect | None = None,
    write: Callable[[Message], Awaitable[None]] | None = None,
    outbox: int = 1000,
    **relay_kwargs: Any,
) -> AsyncIterator[Harness]:
    """A running `Relay` whose `detect.connect` yields `FakeUpstream`s (or calls `connect` first)."""
    upstreams: list[FakeUpstream] = []

    async def fake_connect(
        profile: Profile, client: Any, tg: Any, deliver: Any, on_lost: Any, first: Message
    ) -> tuple[Any, bool]:
        if connect is not None:
            await connect(first)
        upstream = FakeUpstream(deliver, on_lost, answer)
        upstreams.append(upstream)
        return upstream, False

    monkeypatch.setattr(detect, "connect", fake_connect)
    in_send, in_receive = anyio.create_memory_object_stream[Message](0)
    out_send, out_receive = anyio.create_memory_object_stream[Message](outbox)

    async def to_client(message: Message) -> None:
        await out_send.send(message)

    relay = Relay(profile or quick_profile(), write or to_client, {}, **relay_kwargs)
    harness = Harness(relay, in_send, out_receive, upstreams)
    finished = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            try:
                async with in_receive:
                    await relay.run(in_receive)
            finally:
                finished.set()

        async def drain() -> None:
            async for _ in out_receive:  # what the relay writes while it shuts down
                pass

        tg.start_soon(run)
        try:
            yield harness
        finally:
            in_send.close()
            tg.start_soon(drain)
            with anyio.move_on_after(10):
                await finished.wait()
            tg.cancel_scope.cancel()
