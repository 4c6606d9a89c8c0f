"""Lean clients for the benchmark: one drives a proxy over stdio, two talk to the upstream directly.

All three offer the same `Target` interface — `open()`, `call(build)` returning the receive time and the
raw response line, `close()` — so every measurement runs the identical loop against each. They stamp the
time as soon as a complete message is in hand and parse nothing they do not need to route it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import httpx2
import workload
from processes import Children

CALL_TIMEOUT = 60.0
Build = Callable[[int], bytes]


class Target(Protocol):
    name: str
    pid: int | None

    async def open(self) -> None: ...

    async def call(self, build: Build) -> tuple[float, bytes]: ...

    async def close(self) -> None: ...


class TargetFailed(RuntimeError):
    pass


class _Router:
    """Futures by request id, resolved by whichever reader sees the response."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._waiting: dict[object, asyncio.Future[tuple[float, bytes]]] = {}
        self.failure: str | None = None

    def new(self) -> tuple[int, asyncio.Future[tuple[float, bytes]]]:
        if self.failure is not None:
            raise TargetFailed(self.failure)
        msg_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        return msg_id, future

    def resolve(self, line: bytes, received: float) -> None:
        future = self._waiting.pop(workload.response_id(line), None)
        if future is not None and not future.done():
            future.set_result((received, line))

    def forget(self, msg_id: int) -> None:
        self._waiting.pop(msg_id, None)

    def fail(self, reason: str) -> None:
        self.failure = reason
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(TargetFailed(reason))
        self._waiting.clear()

    async def wait(self, msg_id: int, future: asyncio.Future[tuple[float, bytes]]) -> tuple[float, bytes]:
        try:
            return await asyncio.wait_for(future, CALL_TIMEOUT)
        except TimeoutError:
            raise TargetFailed(f"no response to request {msg_id} within {CALL_TIMEOUT:g} s") from None
        finally:
            self.forget(msg_id)


class ProxyClient:
    """A proxy subprocess driven with newline-delimited JSON-RPC on its stdin and stdout."""

    def __init__(self, name: str, argv: Sequence[str], children: Children, stderr: Path, cwd: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.pid: int | None = None
        self._children = children
        self._stderr = stderr
        self._cwd = cwd
        self._router = _Router()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def spawn(self) -> None:
        self._proc = await self._children.spawn(self.argv, stderr=self._stderr, cwd=self._cwd, limit=2**28)
        self.pid = self._proc.pid
        self._reader = asyncio.create_task(self._read())

    async def open(self) -> None:
        """Spawn, initialize, and send notifications/initialized."""
        await self.spawn()
        await self.call(workload.initialize)
        self.send(workload.notification("notifications/initialized"))

    def send(self, line: bytes) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(line + b"\n")

    async def call(self, build: Build) -> tuple[float, bytes]:
        msg_id, future = self._router.new()
        self.send(build(msg_id))
        assert self._proc is not None and self._proc.stdin is not None
        await self._proc.stdin.drain()
        return await self._router.wait(msg_id, future)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        reason = "the proxy closed its stdout"
        try:
            while line := await stdout.readline():
                self._router.resolve(line.rstrip(b"\r\n"), time.perf_counter())
        except (ValueError, asyncio.LimitOverrunError) as exc:
            reason = f"unreadable proxy output: {exc}"
        self._router.fail(f"{reason}; its stderr is in {self._stderr}")

    async def close(self) -> int | None:
        status = None
        if self._proc is not None:
            status = await self._children.stop(self._proc)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        return status


def _http_client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(CALL_TIMEOUT),
        limits=httpx2.Limits(max_connections=100, max_keepalive_connections=100),
        trust_env=False,
    )


class DirectStreamable:
    """Streamable HTTP straight to the upstream: one POST per request, the body is the response."""

    name = "direct"
    pid = None

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = _http_client()
        self._ids = itertools.count(1)
        self._headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

    async def open(self) -> None:
        resp = await self._client.post(self.url, content=workload.initialize(0), headers=self._headers)
        resp.raise_for_status()
        self._headers["Mcp-Session-Id"] = resp.headers["mcp-session-id"]
        self._headers["MCP-Protocol-Version"] = workload.PROTOCOL_VERSION
        resp = await self._client.post(
            self.url, content=workload.notification("notifications/initialized"), headers=self._headers
        )
        resp.raise_for_status()

    async def call(self, build: Build) -> tuple[float, bytes]:
        resp = await self._client.post(self.url, content=build(next(self._ids)), headers=self._headers)
        body = resp.content
        received = time.perf_counter()
        if resp.status_code != 200:
            raise TargetFailed(f"direct POST answered {resp.status_code}")
        if body.startswith(b"event:") or body.startswith(b"data:"):
            body = _event_data(body.rstrip(b"\n"))
        return received, body

    async def close(self) -> None:
        with contextlib.suppress(httpx2.HTTPError):
            await self._client.delete(self.url, headers=self._headers)
        await self._client.aclose()


class DirectSse:
    """Legacy HTTP+SSE straight to the upstream: one GET stream for responses, POSTs answered 202."""

    name = "direct"
    pid = None

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = _http_client()
        self._router = _Router()
        self._endpoint: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._stream: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._stream = asyncio.create_task(self._read())
        endpoint = await asyncio.wait_for(self._endpoint, CALL_TIMEOUT)
        self._post_url = str(httpx2.URL(self.url).join(endpoint))
        await self.call(workload.initialize)
        await self._post(workload.notification("notifications/initialized"))

    async def _post(self, line: bytes) -> None:
        resp = await self._client.post(
            self._post_url, content=line, headers={"Content-Type": "application/json"}
        )
        if resp.status_code // 100 != 2:
            raise TargetFailed(f"direct POST answered {resp.status_code}")

    async def call(self, build: Build) -> tuple[float, bytes]:
        msg_id, future = self._router.new()
        await self._post(build(msg_id))
        return await self._router.wait(msg_id, future)

    async def _read(self) -> None:
        reason = "the SSE stream ended"
        try:
            async with self._client.stream("GET", self.url, headers={"Accept": "text/event-stream"}) as resp:
                buffer = bytearray()
                scan = 0
                async for chunk in resp.aiter_raw():
                    buffer += chunk
                    while (end := buffer.find(b"\n\n", scan)) >= 0:
                        event = bytes(buffer[:end])
                        del buffer[: end + 2]
                        scan = 0
                        self._on_event(event)
                    scan = max(0, len(buffer) - 1)
        except httpx2.HTTPError as exc:
            reason = f"the SSE stream failed: {exc}"
        self._router.fail(reason)
        if not self._endpoint.done():
            self._endpoint.set_exception(TargetFailed(reason))

    def _on_event(self, event: bytes) -> None:
        received = time.perf_counter()
        if event.startswith(b"event: endpoint\n"):
            if not self._endpoint.done():
                self._endpoint.set_result(_event_data(event).decode())
            return
        self._router.resolve(_event_data(event), received)

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream
        await self._client.aclose()


_MESSAGE_HEAD = b"event: message\ndata: "


def _event_data(event: bytes) -> bytes:
    """The data of one SSE event from our upstream (a single data line), without copying it twice."""
    if event.startswith(_MESSAGE_HEAD) and event.find(b"\n", len(_MESSAGE_HEAD)) < 0:
        return event[len(_MESSAGE_HEAD) :]
    data = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(data)
