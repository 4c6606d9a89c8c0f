"""Test peers as subprocesses (started the one way, `tests/peers.py`) and an in-process client driving an
`Aggregator` over memory streams.

Every wait is bounded; every process started is stopped and reaped, also when a test fails.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from mcp_sse_proxy.aggregate.server import Aggregator, Settings
from mcp_sse_proxy.config.model import Profile
from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.messages import Kind, Message
from tests.peers import read_ready_line, spawn, stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
REQUEST_TIMEOUT = 15.0

#: Quick settings for tests: fast health checks and retries, short grace.
FAST = Settings(
    grace=2.0, health_interval=0.5, health_timeout=2.0, retry_initial=0.2, retry_max=1.0, debounce=0.1
)


# ---- peers -------------------------------------------------------------------------------------------------


@dataclass
class Peer:
    """A peer server subprocess on 127.0.0.1; restartable on the same port."""

    module: str
    args: tuple[str, ...]
    transport: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    stderr_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}" + ("/sse" if self.transport == "sse" else "/mcp")

    def start(self) -> Peer:
        with tempfile.NamedTemporaryFile(prefix="peer-", suffix=".stderr", delete=False) as err:
            self.stderr_path = Path(err.name)
        args = ("--transport", self.transport, *self.args, "--port", str(self.port))
        self.process = spawn(self.module, *args, stderr_path=self.stderr_path)
        try:
            self.port = read_ready_line(self.process, START_TIMEOUT)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise RuntimeError(f"{self.module} did not start: {exc}") from exc
        return self

    def stop(self) -> None:
        """Kill the peer (a crash, as the tests want it) and reap it; it can be started again."""
        process, self.process = self.process, None
        if process is None:
            return
        stop_process(process, kill=True)
        if self.stderr_path is not None:
            self.stderr_path.unlink(missing_ok=True)


def profile(name: str, url: str, **kwargs: Any) -> Profile:
    """A profile for tests: no keepalive, quick reconnects, short queue wait."""
    defaults: dict[str, Any] = {
        "ping_interval": 0,
        "reconnect_initial_backoff": 0.1,
        "reconnect_max_backoff": 0.5,
        "queue_timeout": 3.0,
        "connect_timeout": 3.0,
        "read_timeout": 10.0,
    }
    return Profile(name=name, url=url, **(defaults | kwargs))


# ---- the client --------------------------------------------------------------------------------------------

ServerRequestHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class Client:
    """What a stdio client sees of the aggregate: send requests, collect every message written to it."""

    send_stream: Any
    handlers: dict[str, ServerRequestHandler] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _waiters: dict[Any, tuple[anyio.Event, list[dict[str, Any]]]] = field(default_factory=dict)
    _arrived: anyio.Event = field(default_factory=anyio.Event)
    tg: Any = None

    async def deliver(self, message: Message) -> None:
        """The aggregator's `write`."""
        body = message.body
        assert isinstance(body, dict), body
        assert b"\n" not in message.raw
        self.received.append(body)
        self._arrived.set()
        self._arrived = anyio.Event()
        if message.kind is Kind.RESPONSE:
            waiter = self._waiters.pop((isinstance(message.id, str), message.id), None)
            if waiter is not None:
                waiter[1].append(body)
                waiter[0].set()
        elif message.kind is Kind.REQUEST:
            self.tg.start_soon(self._answer, body)

    async def _answer(self, body: dict[str, Any]) -> None:
        handler = self.handlers.get(body["method"])
        if handler is None:
            reply = jsonrpc.error_response(body["id"], jsonrpc.METHOD_NOT_FOUND, "no handler")
        else:
            reply = jsonrpc.from_obj({"jsonrpc": "2.0", "id": body["id"], "result": await handler(body)})
        await self.send_stream.send(reply)

    async def send(self, body: dict[str, Any]) -> None:
        await self.send_stream.send(jsonrpc.from_obj({"jsonrpc": "2.0", **body}))

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        msg_id: Any = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """The whole response (with `result` or `error`)."""
        msg_id = next(self._ids) if msg_id is None else msg_id
        event, slot = anyio.Event(), []
        self._waiters[(isinstance(msg_id, str), msg_id)] = (event, slot)
        body: dict[str, Any] = {"id": msg_id, "method": method}
        if params is not None:
            body["params"] = params
        await self.send(body)
        with anyio.fail_after(timeout):
            await event.wait()
        return slot[0]

    async def result(
        self, method: str, params: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        response = await self.request(method, params, **kwargs)
        assert "result" in response, response
        return response["result"]

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"method": method}
        if params is not None:
            body["params"] = params
        await self.send(body)

    async def call(self, name: str, arguments: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        return await self.result("tools/call", {"name": name, "arguments": arguments or {}}, **kwargs)

    async def text(self, name: str, arguments: dict[str, Any] | None = None) -> str:
        result = await self.call(name, arguments)
        return "".join(block.get("text", "") for block in result["content"] if block.get("type") == "text")

    async def tool_names(self) -> list[str]:
        return [tool["name"] for tool in (await self.result("tools/list"))["tools"]]

    def notifications(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("method") == method and "id" not in m]

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first received message (past or future) matching `predicate`."""
        with anyio.fail_after(timeout):
            while True:
                for message in self.received:
                    if predicate(message):
                        return message
                await self._arrived.wait()

    async def initialize(self, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        result = await self.result(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": capabilities or {},
                "clientInfo": {"name": "aggregate-test", "version": "0"},
            },
        )
        await self.notify("notifications/initialized")
        return result


@asynccontextmanager
async def aggregate(
    profiles: Sequence[Profile],
    settings: Settings = FAST,
    *,
    initialize: bool = True,
    capabilities: dict[str, Any] | None = None,
    handlers: dict[str, ServerRequestHandler] | None = None,
) -> AsyncIterator[Client]:
    """An `Aggregator` over `profiles` driven by a `Client`; closed (stdin EOF) and awaited on exit."""
    send, receive = anyio.create_memory_object_stream[Message](100)
    client = Client(send, handlers=dict(handlers or {}))
    aggregator = Aggregator(profiles, client.deliver, {}, settings)
    done = anyio.Event()

    async def serve() -> None:
        try:
            async with receive:
                await aggregator.run(receive)
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        client.tg = tg
        tg.start_soon(serve)
        try:
            if initialize:
                await client.initialize(capabilities)
            yield client
        finally:
            await send.aclose()
            with anyio.fail_after(15):
                await done.wait()
            tg.cancel_scope.cancel()
