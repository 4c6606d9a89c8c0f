"""The stdio edge: a line reader for stdin and the single writer that owns stdout.

Reads happen in a worker thread (`os.read` on the file descriptor works for pipes, files and consoles on
every platform); lines are framed by `LineFramer`. Writes are queued and flushed by one task, so lines
never interleave, and a batch of queued lines leaves in one write.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .protocol.framing import LineFramer

READ_CHUNK = 1 << 20


async def read_lines(fd: int, max_line: int) -> AsyncIterator[bytes | None]:
    """Yield each non-blank line of `fd` (without its newline); `None` stands for an over-long line.

    A daemon thread does the blocking reads, so a process told to exit never waits for stdin; the small
    bounded stream between it and the loop gives back-pressure when the relay is busy.
    """
    send, receive = anyio.create_memory_object_stream[bytes](4)
    token = anyio.lowlevel.current_token()
    threading.Thread(target=_pump, args=(fd, send, token), name="stdin-reader", daemon=True).start()
    framer = LineFramer(max_line)
    async with receive:
        async for chunk in receive:
            lines, dropped = framer.feed(chunk)
            for _ in range(dropped):
                yield None
            for line in lines:
                yield line
    for line in framer.finish():
        yield line


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
        async with self._receive:
            async for first in self._receive:
                batch = [first, b"\n"]
                while True:
                    try:
                        line = self._receive.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    batch.append(line)
                    batch.append(b"\n")
                if not self.broken:
                    data = b"".join(batch) if len(batch) > 2 else first + b"\n"
                    try:
                        await anyio.to_thread.run_sync(_write_all, self._fd, data)
                    except OSError:
                        # The client went away; keep draining so senders never block forever.
                        self.broken = True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
