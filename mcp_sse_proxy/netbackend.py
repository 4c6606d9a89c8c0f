"""An httpcore2 network backend for plain TCP on the asyncio event loop, without anyio in the I/O path.

httpcore2's default backend goes through anyio's socket streams: each read and write opens a
`fail_after` scope and anyio's checkpoints, and each of those looks up the running async library and the
current task. With 32 requests in flight that bookkeeping was about a quarter of the proxy's samples. Here
a read or a write is a buffer operation and, when it has to wait, one future with one timer.

Used for http:// only (`httpclient._TlsOnDemand`); https keeps httpcore2's own backend and its TLS.
Buffers are bounded: reading pauses above `READ_HIGH_WATER` bytes not yet consumed, and a write waits
while the transport's own buffer is above asyncio's high-water mark.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import anyio
from httpcore2 import ConnectError, ConnectTimeout, ReadError, ReadTimeout, WriteError, WriteTimeout
from httpcore2._backends.base import AsyncNetworkBackend, AsyncNetworkStream
from httpcore2._utils import is_socket_readable

READ_HIGH_WATER = 1 << 20
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


#: The size of the receive buffer. asyncio's plain protocol receives into a new 256 KiB bytes object per
#: read and shrinks it, which fragments the C heap (RSS crept up with the number of requests); a
#: buffered protocol receives into one buffer and copies out each chunk at its own size. One buffer
#: serves every connection of a backend: the loop fills it and `buffer_updated` empties it in one step.
RECEIVE_BUFFER = 1 << 18


class _Stream(asyncio.BufferedProtocol, AsyncNetworkStream):
    """One connection: the asyncio protocol and httpcore2's stream in one object."""

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: memoryview) -> None:
        self._loop = loop
        self._receive = receive
        self._transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._lost: Exception | None = None
        self._closed = False
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio.Transport.
        self._transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._receive

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self._receive[:nbytes]))

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > READ_HIGH_WATER and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._lost = exc
        self._eof = True
        self._wake()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, timeout: float | None) -> None:
        """Until `_wake`; TimeoutError after `timeout` seconds. Cancellation reaches the future directly."""
        waiter = self._waiter = self._loop.create_future()
        timer = None
        if timeout is not None:
            timer = self._loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    # -- httpcore2's AsyncNetworkStream ---------------------------------------------------------------

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        deadline = None if timeout is None else self._loop.time() + timeout
        while not self._chunks and not self._eof:  # a wake-up may be for the writer
            try:
                await self._wait(None if deadline is None else max(0.0, deadline - self._loop.time()))
            except TimeoutError:
                raise ReadTimeout("timed out reading from the server") from None
        if not self._chunks:
            if self._lost is not None:
                raise ReadError(str(self._lost) or type(self._lost).__name__)
            return b""
        chunk = self._chunks.popleft()
        if len(chunk) > max_bytes:
            self._chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self._buffered -= len(chunk)
        if self._reading_paused and self._buffered <= READ_HIGH_WATER // 2 and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        transport = self._transport
        if self._closed or transport is None or transport.is_closing():
            raise WriteError(str(self._lost) if self._lost else "the connection is closed")
        transport.write(buffer)
        while self._writing_paused and not self._closed:
            try:
                await self._wait(timeout)
            except TimeoutError:
                raise WriteTimeout("timed out writing to the server") from None
        if self._closed and self._lost is not None:
            raise WriteError(str(self._lost))

    async def aclose(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> AsyncNetworkStream:
        raise ConnectError("this backend carries plain TCP only; https uses httpcore2's own backend")

    def get_extra_info(self, info: str) -> Any:
        transport = self._transport
        if transport is None:
            return None
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            # The loop reads as data arrives, so an idle connection the server closed shows here, not
            # (only) as a readable socket.
            if self._eof or self._chunks or self._closed:
                return True
            sock = transport.get_extra_info("socket")
            return sock is not None and is_socket_readable(sock)
        return None


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class AsyncioBackend(AsyncNetworkBackend):
    """Plain TCP (and Unix sockets) on the running asyncio loop."""

    def __init__(self) -> None:
        self._receive: memoryview | None = None

    def _protocol(self, loop: asyncio.AbstractEventLoop) -> _Stream:
        if self._receive is None:
            self._receive = memoryview(bytearray(RECEIVE_BUFFER))
        return _Stream(loop, self._receive)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            with anyio.fail_after(timeout):
                _, stream = await loop.create_connection(
                    lambda: self._protocol(loop),
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError:
            raise ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise ConnectError(str(exc)) from None
        _apply(stream, socket_options)
        return stream

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            with anyio.fail_after(timeout):
                _, stream = await loop.create_unix_connection(lambda: self._protocol(loop), path)
        except TimeoutError:
            raise ConnectTimeout(f"timed out connecting to {path}") from None
        except OSError as exc:
            raise ConnectError(str(exc)) from None
        _apply(stream, socket_options)
        return stream

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def _apply(stream: _Stream, options: Iterable[SocketOption] | None) -> None:
    sock: socket.socket | None = stream.get_extra_info("socket")
    for option in options or ():
        if sock is not None:
            sock.setsockopt(*option)  # type: ignore[arg-type]
