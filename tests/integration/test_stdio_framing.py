"""The stdio side byte by byte: the proxy as a bare subprocess (`raw_proxy`) in front of the SDK's legacy SSE server.

What a client writes on stdin may be broken, huge, unterminated or cut short by EOF or a signal; what the proxy
writes on stdout must always be whole JSON-RPC lines, and every request must get exactly one answer.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest

from tests.integration.conftest import RawProxy, RunningServer
from tests.servers.sdk_server import big_text

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(60)]

SSE = ("--transport", "sse")
INIT_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {"sampling": {}},
    "clientInfo": {"name": "framing-test", "version": "1"},
}
TEN_MB = 10_000_000


# ---- helpers -------------------------------------------------------------------------------------------------


def rpc(method: str, request_id: int | str | None = None, **params: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params:
        message["params"] = params
    return message


def line(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def call(request_id: int | str, tool: str, **arguments: Any) -> dict[str, Any]:
    return rpc("tools/call", request_id, name=tool, arguments=arguments)


def tool_text(response: dict[str, Any]) -> str:
    assert "result" in response, response
    return str(response["result"]["content"][0]["text"])


def assert_json_rpc_line(raw: bytes) -> Any:
    """One stdout line: UTF-8 JSON-RPC 2.0 (an object or a batch of them), no stray bytes."""
    message = json.loads(raw.decode("utf-8"))
    for item in message if isinstance(message, list) else [message]:
        assert isinstance(item, dict) and item.get("jsonrpc") == "2.0", raw[:200]
    return message


async def handshake(proxy: RawProxy) -> None:
    await proxy.send(rpc("initialize", "init", **INIT_PARAMS))
    answer = await proxy.read_message(timeout=10)
    assert answer["id"] == "init" and answer["result"]["serverInfo"]["name"] == "sdk-test-server", answer
    await proxy.send(rpc("notifications/initialized"))


async def expect_silence(proxy: RawProxy, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        unexpected = await proxy.readline(timeout=seconds)
        raise AssertionError(f"unexpected output: {unexpected[:300]!r}")


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on (bound once to pick it, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that completes TCP handshakes (the backlog) but never reads or answers: a hung server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


# ---- bad input -----------------------------------------------------------------------------------------------


async def test_invalid_json_gets_parse_error_and_the_proxy_goes_on(
    sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE) as proxy:
        await handshake(proxy)
        for garbage in (
            b"{not json",
            b'{"jsonrpc":"2.0","id":3,"method":"ping"',
            b"\xff\xfe\x00bad utf-8",
            b"NaN",
        ):
            await proxy.write(garbage + b"\n")
            answer = assert_json_rpc_line(await proxy.readline())
            assert answer["id"] is None and answer["error"]["code"] == -32700, (garbage, answer)
        await proxy.send(rpc("ping", 1))
        assert await proxy.read_message() == {"jsonrpc": "2.0", "id": 1, "result": {}}
        assert "invalid JSON" in proxy.stderr_text()


@pytest.mark.parametrize(
    ("payload", "expected_id"),
    [
        pytest.param(b'"just a string"', None, id="string"),
        pytest.param(b"42", None, id="number"),
        pytest.param(b"true", None, id="boolean"),
        pytest.param(b"null", None, id="null"),
        pytest.param(b"[]", None, id="empty-array"),
        pytest.param(b'[1, 2, "x"]', None, id="array-of-garbage"),
        pytest.param(b'{"id": 5, "method": "ping"}', 5, id="no-jsonrpc-member"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 6, "method": 7}', 6, id="method-not-a-string"),
        pytest.param(b'{"jsonrpc": "2.0", "id": null, "method": "ping"}', None, id="null-request-id"),
        pytest.param(b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}', None, id="object-id"),
        pytest.param(b'{"jsonrpc": "2.0"}', None, id="neither-request-nor-response"),
    ],
)
async def test_json_that_is_not_json_rpc_gets_invalid_request(
    payload: bytes, expected_id: Any, sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE) as proxy:
        await handshake(proxy)
        await proxy.write(payload + b"\n")
        await proxy.send(rpc("ping", "next"))
        answer = assert_json_rpc_line(await proxy.readline())
        errors = answer if isinstance(answer, list) else [answer]
        assert errors, answer
        for error in errors:
            assert error.get("id") == expected_id and error["error"]["code"] == -32600, answer
        # The proxy goes on with the next line.
        assert await proxy.read_message() == {"jsonrpc": "2.0", "id": "next", "result": {}}


async def test_blank_lines_and_crlf_are_ignored(sdk_sse_server: RunningServer, raw_proxy: Any) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE) as proxy:
        await handshake(proxy)
        await proxy.write(b"\n\n   \n\t\n\r\n" + line(rpc("ping", 1))[:-1] + b"\r\n\n \n")
        assert await proxy.read_message() == {"jsonrpc": "2.0", "id": 1, "result": {}}
        await expect_silence(proxy, 0.7)
        # A message that arrives in pieces, across several writes, is one message.
        whole = line(call(2, "echo", text="pieces"))
        for start in range(0, len(whole), 7):
            await proxy.write(whole[start : start + 7])
            await anyio.sleep(0.005)  # the scenario: pieces written apart, so the proxy reads them apart
        assert tool_text(await proxy.read_message()) == "pieces"


async def test_ten_megabyte_request_line(
    sdk_sse_server: RunningServer, raw_proxy: Any, record_property: Callable[[str, Any], None]
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE) as proxy:
        await handshake(proxy)
        message = line(call(2, "size_of", data="y" * TEN_MB))
        assert len(message) > TEN_MB  # far beyond asyncio's 64 KiB default line limit
        began = time.monotonic()
        await proxy.write(message)
        answer = await proxy.read_message(timeout=30)
        elapsed = time.monotonic() - began
        assert answer["id"] == 2 and tool_text(answer) == str(TEN_MB)
        record_property("stdin_10mb_request_s", round(elapsed, 3))
        print(f"[figure] stdin_10mb_request_s = {elapsed:.3f}")
        await proxy.send(rpc("ping", 3))
        assert await proxy.read_message() == {"jsonrpc": "2.0", "id": 3, "result": {}}


# ---- end of input and signals --------------------------------------------------------------------------------


async def test_final_line_without_newline_is_framed(sdk_sse_server: RunningServer, raw_proxy: Any) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE) as proxy:
        await handshake(proxy)
        await proxy.write(b"{truncated")  # no newline: only EOF ends this line
        await proxy.close_stdin()
        answer = assert_json_rpc_line(await proxy.readline(timeout=5))
        assert answer["id"] is None and answer["error"]["code"] == -32700
        with pytest.raises(EOFError):
            await proxy.readline(timeout=5)
        assert await proxy.wait(timeout=5) == 0


async def test_final_request_without_newline_is_answered(
    sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE) as proxy:
        await handshake(proxy)
        await proxy.write(line(rpc("ping", "last"))[:-1])
        await proxy.close_stdin()
        assert await proxy.read_message(timeout=5) == {"jsonrpc": "2.0", "id": "last", "result": {}}
        assert await proxy.wait(timeout=5) == 0


async def test_eof_with_a_request_in_flight_answers_it_before_exit(
    sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE) as proxy:
        await handshake(proxy)
        await proxy.send(call(7, "slow", seconds=0.5, steps=1))
        await proxy.close_stdin()
        answer = await proxy.read_message(timeout=20)
        assert answer["id"] == 7 and ("result" in answer or "error" in answer)
        if "result" in answer:  # it finished inside the shutdown grace
            assert tool_text(answer) == "slept 0.5"
        assert await proxy.wait(timeout=20) == 0


async def test_eof_with_a_long_request_in_flight_answers_with_an_error(
    sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE) as proxy:
        await handshake(proxy)
        long_call = call(8, "slow", seconds=30, steps=60)
        long_call["params"]["_meta"] = {"progressToken": "eof-progress"}
        await proxy.send(long_call)
        # The first progress notification proves the call reached the server.
        assert (await proxy.read_message(timeout=20))["method"] == "notifications/progress"
        await proxy.close_stdin()
        began = time.monotonic()
        while (answer := assert_json_rpc_line(await proxy.readline(timeout=20))).get("id") != 8:
            assert answer["method"] == "notifications/progress"
        assert answer["error"]["code"] == -32603
        assert "shutting down" in answer["error"]["message"]
        assert await proxy.wait(timeout=20) == 0
        assert time.monotonic() - began < 20  # the shutdown grace, not the call's 30 s


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_during_a_long_call(
    signum: signal.Signals, sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE) as proxy:
        await handshake(proxy)
        long_call = call("long", "slow", seconds=30, steps=60)
        long_call["params"]["_meta"] = {"progressToken": "long-progress"}
        await proxy.send(long_call)
        # The first progress notification proves the tool is running on the server.
        progress = await proxy.read_message(timeout=5)
        assert progress["method"] == "notifications/progress"
        assert progress["params"]["progressToken"] == "long-progress"
        began = time.monotonic()
        proxy.process.send_signal(signum)
        answer, skipped = await proxy.read_until(lambda m: m.get("id") == "long", timeout=20)
        assert all(m.get("method") == "notifications/progress" for m in skipped)
        assert answer["error"]["code"] == -32603
        assert await proxy.wait(timeout=20) == 0
        assert time.monotonic() - began < 20  # the shutdown grace, not the call's 30 s
        with pytest.raises(EOFError):
            await proxy.readline(timeout=2)


# ---- stdout discipline ---------------------------------------------------------------------------------------


async def test_stdout_carries_only_whole_json_rpc_lines(
    sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, *SSE, "--ping-interval", "1") as proxy:
        await handshake(proxy)
        await proxy.write(b"garbage\n")
        await proxy.send(rpc("logging/setLevel", "lvl", level="debug"))
        await proxy.send(call("log", "log", level="info", message="to the client"))
        token_call = rpc("tools/call", "prog", name="slow", arguments={"seconds": 0.3, "steps": 3})
        token_call["params"]["_meta"] = {"progressToken": "tok"}
        await proxy.send(token_call)
        await proxy.send(call("sample", "sample", prompt="q"))
        # Many sizable answers at once: written whole, one per line, never interleaved.
        for index in range(20):
            await proxy.send(call(f"big{index}", "big", size=200_000 + index))
        expected = {"lvl", "log", "prog", "sample", *(f"big{index}" for index in range(20))}
        seen: dict[Any, Any] = {}
        notifications: list[str] = []
        with anyio.fail_after(30):
            while not expected <= set(seen):
                message = assert_json_rpc_line(await proxy.readline(timeout=30))
                if message.get("method") == "sampling/createMessage":
                    reply = {"role": "assistant", "content": {"type": "text", "text": "a"}, "model": "m"}
                    await proxy.send({"jsonrpc": "2.0", "id": message["id"], "result": reply})
                elif "method" in message:
                    notifications.append(message["method"])
                else:
                    seen[message["id"]] = message
        assert seen[None]["error"]["code"] == -32700
        for index in range(20):
            assert tool_text(seen[f"big{index}"]) == big_text(200_000 + index)
        assert tool_text(seen["sample"]) == "a"
        assert notifications.count("notifications/progress") == 3
        assert "notifications/message" in notifications
        assert "ping" not in notifications
        # Idle for a while with keepalive on: still nothing but protocol (here: nothing at all).
        await expect_silence(proxy, 2.5)
        await proxy.close_stdin()
        rest = []
        with anyio.fail_after(10):
            while True:
                try:
                    rest.append(assert_json_rpc_line(await proxy.readline(timeout=10)))
                except EOFError:
                    break
        assert rest == []
        assert await proxy.wait() == 0


# ---- an upstream that is not there ---------------------------------------------------------------------------


async def test_dead_port_at_start_answers_initialize_with_an_error(
    raw_proxy: Any, start_sdk_server: Callable[..., RunningServer]
) -> None:
    with closed_port() as port:
        url = f"http://127.0.0.1:{port}/sse"
        # Nothing listens: the initialize waits for the queue timeout while the proxy retries, then fails.
        async with raw_proxy(url, *SSE, "--connect-timeout", "3", "--queue-timeout", "2") as proxy:
            await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
            answer = assert_json_rpc_line(await proxy.readline(timeout=20))
            assert answer["id"] == 1 and answer["error"]["code"] == -32603
            assert f"127.0.0.1:{port}" in answer["error"]["message"]
            # The proxy keeps going: once a server listens there, the client's next attempt succeeds.
            server = await anyio.to_thread.run_sync(start_sdk_server, "sse", "--port", str(port))
            assert server.port == port
            await proxy.send(rpc("initialize", 2, **INIT_PARAMS))
            answer = await proxy.read_message(timeout=10)
            assert answer["id"] == 2 and answer["result"]["serverInfo"]["name"] == "sdk-test-server"


async def test_silent_server_at_start_answers_initialize_with_an_error(raw_proxy: Any) -> None:
    with silent_listener() as port:
        url = f"http://127.0.0.1:{port}/sse"
        async with raw_proxy(url, *SSE, "--connect-timeout", "2", "--read-timeout", "3") as proxy:
            await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
            answer = assert_json_rpc_line(await proxy.readline(timeout=8))
            assert answer["id"] == 1 and "error" in answer
