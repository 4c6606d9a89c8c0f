"""The stdio edge on both of its paths: the event loop's own (POSIX pipes) and blocking threads (what Windows
runs, forced here with `MCP_SSE_PROXY_STDIO_THREADS=1`): a slow reader of stdout, a closed stdout, EOF, large
lines, and client lines that cannot be decoded.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any

import anyio
import pytest

from mcp_sse_proxy.stdio import THREADS_ENV
from tests.integration.conftest import REPO_ROOT, RunningServer, proxy_command, proxy_environment
from tests.integration.test_stdio_framing import (
    INIT_PARAMS,
    SSE,
    assert_json_rpc_line,
    call,
    handshake,
    line,
    rpc,
    tool_text,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(90)]

PATHS = pytest.mark.parametrize("env", [{}, {THREADS_ENV: "1"}], ids=["loop", "threads"])


@PATHS
async def test_a_slow_stdout_reader_loses_no_answer(
    env: dict[str, str], sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    """Far more output than the pipe holds, unread for longer than the shutdown grace (2 s): the writes
    block (a thread's blocking write, or the loop's wait) and every answer arrives afterwards. (The relay's
    own case, an answer waiting behind a full writer queue, is in test_relay_guarantees.py.)"""
    async with raw_proxy(sdk_sse_server.url, *SSE, env=env) as proxy:
        await handshake(proxy)
        for n in range(12):
            await proxy.send(call(n, "big", size=100_000))
        # The scenario, not synchronisation: the client reads nothing for longer than the grace (2 s).
        await anyio.sleep(3)
        answers = [await proxy.read_message(timeout=20) for _ in range(12)]
        assert sorted(a["id"] for a in answers) == list(range(12))
        assert all(len(tool_text(a)) == 100_000 for a in answers)


@PATHS
async def test_a_closed_stdout_makes_the_proxy_exit(
    env: dict[str, str], sdk_sse_server: RunningServer
) -> None:
    """The client's reader died (its end of our stdout closed) while a long call runs: exit in seconds."""
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile("w+") as errlog:
        process = await anyio.open_process(
            proxy_command(sdk_sse_server.url, *SSE),
            stdin=subprocess.PIPE,
            stdout=write_end,
            stderr=errlog,
            cwd=REPO_ROOT,
            env=proxy_environment(env),
        )
        os.close(write_end)
        try:
            assert process.stdin is not None
            await process.stdin.send(line(rpc("initialize", 1, **INIT_PARAMS)))
            with anyio.fail_after(15):
                await anyio.wait_readable(read_end)
            assert b'"id":1' in os.read(read_end, 1 << 16)
            await process.stdin.send(line(call(2, "slow", seconds=30, steps=1)))
            os.close(read_end)
            read_end = -1
            with anyio.fail_after(20):  # long before the call's 30 s
                await process.wait()
            errlog.seek(0)
            assert "closed the proxy's output" in errlog.read()
        finally:
            if read_end >= 0:
                os.close(read_end)
            if process.returncode is None:
                process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
                await process.aclose()


@PATHS
async def test_eof_answers_what_is_in_flight_and_exits(
    env: dict[str, str], sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE, env=env) as proxy:
        await handshake(proxy)
        await proxy.send(call(7, "echo", text="last"))
        await proxy.close_stdin()
        answer = await proxy.read_message(timeout=10)
        assert answer["id"] == 7 and tool_text(answer) == "last"
        with pytest.raises(EOFError):
            await proxy.readline(timeout=10)
        assert await proxy.wait(timeout=10) == 0


@PATHS
async def test_large_lines_both_ways(
    env: dict[str, str], sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE, env=env) as proxy:
        await handshake(proxy)
        await proxy.write(line(call(2, "size_of", data="y" * 3_000_000)))
        assert tool_text(await proxy.read_message(timeout=30)) == "3000000"
        await proxy.send(call(3, "big", size=3_000_000))
        assert len(tool_text(await proxy.read_message(timeout=30))) == 3_000_000


DEEP = b"[" * 300_000 + b"]" * 300_000


@PATHS
@pytest.mark.parametrize(
    "payload",
    [
        # Large enough to be routed undecoded; the progress token makes the relay read its params.
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"_meta":{"progressToken":1},'
        b'"name":"echo","arguments":{"text":' + DEEP + b"}}}",
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"_meta":{"progressToken":1},'
        b'"name":"echo","arguments":{"text":"' + b"\xff" * 300_000 + b'"}}}',
        b'{"jsonrpc":"2.0","method":"notifications/x","params":' + DEEP + b"}",
        b"[" + DEEP + b"]",
    ],
    ids=["deep-request", "bad-utf8-request", "deep-notification", "deep-batch"],
)
async def test_an_undecodable_large_line_is_answered_and_the_proxy_lives(
    env: dict[str, str], payload: bytes, sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE, env=env) as proxy:
        await handshake(proxy)
        await proxy.write(payload + b"\n")
        answer = assert_json_rpc_line(await proxy.readline(timeout=15))
        assert answer["error"]["code"] in (-32700, -32600), answer
        assert answer["id"] in (5, None)
        await proxy.send(rpc("ping", 9))
        assert await proxy.read_message(timeout=10) == {"jsonrpc": "2.0", "id": 9, "result": {}}
