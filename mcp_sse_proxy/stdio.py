"""The stdio edge: a line reader for stdin and the single writer that owns stdout.

On POSIX, when stdin/stdout are pipes or sockets (as when a client spawns us), they are switched to
non-blocking mode and served by the event loop itself: no thread hop per message. Elsewhere (files,
consoles, Windows) reads and writes are blocking calls in daemon threads; setting `THREADS_ENV=1` forces
that path, so tests exercise on Linux what Windows runs. Lines are framed by `LineFramer`; writes are queued
and flushed by one task, so lines never interleave, and a batch of queued lines leaves in one `writev`.
The writer reports when the client's end of stdout is gone (`LineWriter.gone`): at the first failed write,
or, for a pipe on POSIX, as soon as its reader closes it even when nothing is being written.
"""

from __future__ import annotations

import os
import queue
import stat
import sys
import threading
from collections.abc import AsyncIterator
from types import ModuleType

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .protocol.framing import LineFramer

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

#: Set to "1" to force the blocking-threads path (what Windows uses) on any platform.
THREADS_ENV = "MCP_SSE_PROXY_STDIO_THREADS"
READ_CHUNK = 1 << 20
#: The reusable buffer stdin is read into when the loop polls it (a chunk is copied out at its size).
READ_BUFFER = 1 << 18
#: At most this many buffers per writev (POSIX IOV_MAX is at least 1024).
MAX_IOV = 1024
#: The capacity asked for a stdout pipe (Linux; the default is 64 KiB). A 4 MiB result then crosses in a
#: few writes instead of some 70 write/wake-up rounds with the client, and small lines never wait.
PIPE_SIZE = 1 << 20


def _is_pollable(fd: int) -> bool:
    """Whether the event loop can wait on `fd` directly (a pipe or socket on POSIX)."""
    if sys.platform == "win32" or os.environ.get(THREADS_ENV) == "1":
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
    # One buffer for every read, and each chunk copied out at its own size: `os.read(fd, READ_CHUNK)`
    # would allocate (and shrink) a READ_CHUNK bytes object per read, which fragments the C heap.
    buffer = bytearray(READ_BUFFER)
    view = memoryview(buffer)
    try:
        while True:
            try:
                count = os.readv(fd, (buffer,))
                chunk = bytes(view[:count])
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
        #: Set once the client's end of the output is gone: nothing written from then on arrives.
        self.gone = anyio.Event()

    def mark_gone(self) -> None:
        self.broken = True
        self.gone.set()

    async def watch(self) -> None:
        """Return once the reader of a POSIX pipe closed it (never, for other outputs), marking it gone.

        The loop reports the write end of a pipe "readable" only when its reader has closed it (an error
        condition), so this costs no thread and no polling.
        """
        if sys.platform == "win32" or not _is_fifo(self._fd):
            await anyio.sleep_forever()
        await anyio.wait_readable(self._fd)
        self.mark_gone()

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
            _grow_pipe(self._fd)
        blocking = None if pollable else _BlockingWrites(self._fd)
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
                        if blocking is None:
                            await _write_polling(self._fd, batch)
                        else:
                            await blocking.write(b"".join(batch))
                    except OSError:
                        # The client went away; keep draining so senders never block forever.
                        self.mark_gone()
                    # Written: let go of the lines now, not when the next one arrives (a 4 MiB result
                    # would otherwise stay alive through the idle time, and add to the next one's peak).
                    first = line = b""
                    del batch
        finally:
            if blocking is not None:
                blocking.close()
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


def _grow_pipe(fd: int) -> None:
    """Ask for a `PIPE_SIZE` buffer on a pipe (Linux only; beyond /proc/sys/fs/pipe-max-size it is refused,
    and then the pipe keeps its size)."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setpipe is None or not _is_fifo(fd):
        return
    try:
        fcntl.fcntl(fd, setpipe, PIPE_SIZE)
    except OSError:
        pass


def _is_fifo(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


class _BlockingWrites:
    """Blocking writes in one daemon thread: a write stuck on a client that stopped reading never keeps
    the process from exiting (an anyio worker thread would be joined at exit)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._jobs: queue.SimpleQueue[tuple[bytes, list[OSError | None], anyio.Event, object] | None] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self._serve, name="stdout-writer", daemon=True).start()

    async def write(self, data: bytes) -> None:
        done = anyio.Event()
        outcome: list[OSError | None] = [None]
        self._jobs.put((data, outcome, done, anyio.lowlevel.current_token()))
        await done.wait()
        if outcome[0] is not None:
            raise outcome[0]

    def close(self) -> None:
        self._jobs.put(None)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            data, outcome, done, token = job
            try:
                _write_all(self._fd, data)
            except OSError as exc:
                outcome[0] = exc
            try:
                anyio.from_thread.run_sync(done.set, token=token)  # type: ignore[arg-type]
            except RuntimeError:
                return  # the loop is gone: the process is exiting


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
