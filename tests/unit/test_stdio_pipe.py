"""stdio.LineWriter on a pipe: it asks for a 1 MiB pipe buffer (Linux), and a line larger than that still
arrives whole and in order with the lines around it."""

from __future__ import annotations

import os
import sys
import threading

import anyio
import pytest

from mcp_sse_proxy import stdio


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux only")
def test_the_writer_grows_a_stdout_pipe_and_writes_large_lines_whole() -> None:
    import fcntl

    read_fd, write_fd = os.pipe()
    default = fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ)
    big = b"x" * (3 * stdio.PIPE_SIZE)
    received = bytearray()

    def drain() -> None:
        while chunk := os.read(read_fd, 1 << 16):
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    async def main() -> int:
        writer = stdio.LineWriter(write_fd)
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.run)
            await writer.send(b"first")
            await writer.send(big)
            await writer.send(b"last")
            await anyio.sleep(0)
            size = fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ)
            writer.close()
        return size

    try:
        size = anyio.run(main)
    finally:
        os.close(write_fd)
    reader.join(10)
    os.close(read_fd)
    limit = int(open("/proc/sys/fs/pipe-max-size").read())
    assert size == (stdio.PIPE_SIZE if stdio.PIPE_SIZE <= limit else default)
    assert bytes(received) == b"first\n" + big + b"\nlast\n"
