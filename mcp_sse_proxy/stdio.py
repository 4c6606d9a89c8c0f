"""The stdio edge: a line reader for stdin and the single writer that owns stdout.

On POSIX, when stdin/stdout are pipes or sockets (as when a client spawns us), they are switched to
non-blocking mode and served by the event loop itself: no thread hop per message. Elsewhere (files,
consoles, Windows) reads happen in a daemon thread and writes in a worker thread. Lines are framed by
`LineFramer`; writes are queued and flushed by one task, so lines never interleave, and a batch of queued
lines leaves in one `writev`.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import AsyncIterator

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .protocol.framing import LineFramer

READ_CHUNK = 1 << 20
#: At most this many buffers per writev (POSIX IOV_MAX is at least 1024).
MAX_IOV = 1024


def _is_pollable(fd: int) -> bool:
    """Whether the event loop can wait on `fd` directly (a pipe or socket on POSIX)."""
    if sys.platform == "win32":
        return False
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def read_lines(fd: int, max_line: int) -> AsyncIterator[bytes | None]:
    """Yield each non-blank line of `fd` (without its newline); `None` stands for an over-long line."""
    framer = LineFramer(max_line)
    chunks = _poll_chunks(fd) if _is_pollable(fd) else _thread_chunks(fd)
    async for chunk in chunks:
        lines, dropped = framer.feed(chunk)
        for _ in range(dropped):
            yield None
        for line in lines:
            yield line
    for line in framer.finish():
        yield line


async def _poll_chunks(fd: int) -> AsyncIterator[bytes]:
    was_blocking = os.get_blocking(fd)
    os.set_blocking(fd, False)
    try:
        while True:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                await anyio.wait_readable(fd)
                continue
            except OSError:
                return
            if not chunk:
                return
            yield chunk
    finally:
        _restore_blocking(fd, was_blocking)


async def _thread_chunks(fd: int) -> AsyncIterator[bytes]:
    """Blocking reads in a daemon thread, so a process told to exit never waits for stdin; the small
    bounded stream between it and the loop gives back-pressure when the relay is busy."""
    send, receive = anyio.create_memory_object_stream[bytes](4)
    token = anyio.lowlevel.current_token()
    threading.Thread(target=_pump, args=(fd, send, token), name="stdin-reader", daemon=True).start()
    async with receive:
        async for chunk in receive:
            yield chunk


def _restore_blocking(fd: int, blocking: bool) -> None:
    try:
        os.set_blocking(fd, blocking)
    except OSError:
        pass


def _pump(fd: int, send: MemoryObjectSendStream[bytes], token: anyio.lowlevel.EventLoopToken) -> None:
    try:
        while True:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                break
            anyio.from_thread.run(send.send, chunk, token=token)
    except (RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the loop or the reader is gone: the process is exiting
    finally:
        try:
            anyio.from_thread.run_sync(send.close, token=token)
        except RuntimeError:
            pass


class LineWriter:
    """Owns an output file descriptor; `send` queues one line, `run` writes them in order."""

    def __init__(self, fd: int, buffer: int = 1024) -> None:
        self._fd = fd
        send, receive = anyio.create_memory_object_stream[bytes](buffer)
        self._send: MemoryObjectSendStream[bytes] = send
        self._receive: MemoryObjectReceiveStream[bytes] = receive
        self.broken = False

    async def send(self, line: bytes) -> None:
        """Queue `line` (no trailing newline) for writing; waits when the reader of stdout is slow."""
        if self.broken:
            return
        await self._send.send(line)

    def close(self) -> None:
        self._send.close()

    async def run(self) -> None:
        """Write queued lines until `close()` has been called and the queue is drained."""
        pollable = _is_pollable(self._fd)
        was_blocking = os.get_blocking(self._fd) if pollable else True
        if pollable:
            os.set_blocking(self._fd, False)
        try:
            async with self._receive:
                async for first in self._receive:
                    batch = [first, b"\n"]
                    while len(batch) < MAX_IOV:
                        try:
                            line = self._receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                        batch.append(line)
                        batch.append(b"\n")
                    if self.broken:
                        continue
                    try:
                        if pollable:
                            await _write_polling(self._fd, batch)
                        else:
                            await anyio.to_thread.run_sync(_write_all, self._fd, b"".join(batch))
                    except OSError:
                        # The client went away; keep draining so senders never block forever.
                        self.broken = True
        finally:
            if pollable:
                _restore_blocking(self._fd, was_blocking)


async def _write_polling(fd: int, buffers: list[bytes]) -> None:
    """Write every buffer to a non-blocking fd with `writev`, waiting on the loop when the pipe is full."""
    views = [memoryview(b) for b in buffers if b]
    while views:
        try:
            written = os.writev(fd, views)
        except BlockingIOError:
            await anyio.wait_writable(fd)
            continue
        while written and views:
            if written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][written:]
                written = 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
