"""The era bridges under faults, end to end: the proxy as a subprocess, the fault server or SDK servers upstream.

What a bridge must never do: leave a client request unanswered because the stream under it dropped, tie a
later server request to a call the client already gave up on, or wait forever on a server that accepted the
connection and never answers.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.conftest import FaultControl, RawProxy, open_raw_proxy

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(60)]

MODERN = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
#: Far below the 600 s request timeout the hang used to wait for, far above a loaded machine's jitter.
PROMPT = 20.0  # "at once" here means long before the 30 s or 60 s a call would take, with room for load


def modern_request(msg_id: int | str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    body = dict(params or {})
    body["_meta"] = {
        VERSION_KEY: MODERN,
        CAPABILITIES_KEY: {"sampling": {}},
        CLIENT_INFO_KEY: {"name": "bridge-fault-client", "version": "0"},
    }
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": body}


def call(msg_id: int | str, tool: str, **arguments: Any) -> dict[str, Any]:
    return modern_request(msg_id, "tools/call", {"name": tool, "arguments": arguments})


async def answer_to(proxy: RawProxy, msg_id: Any, timeout: float = PROMPT) -> dict[str, Any]:
    message, _ = await proxy.read_until(lambda m: m.get("id") == msg_id and "method" not in m, timeout)
    return dict(message)


def is_call(entry: dict[str, Any], tool: str) -> bool:
    body = entry["body"] if isinstance(entry["body"], dict) else {}
    return body.get("method") == "tools/call" and body["params"].get("name") == tool


async def test_bridged_sse_stream_drop_fails_in_flight_calls_at_once(fault_server: FaultControl) -> None:
    """A 2026-07-28 client bridged to legacy SSE: the stream drops mid-call; the call is answered with an
    error at once (it used to wait for the 600 s request timeout), and the next call works."""
    async with open_raw_proxy(fault_server.sse_url, "--transport", "sse") as proxy:
        await proxy.send(modern_request(1, "server/discover"))
        assert "result" in await answer_to(proxy, 1)
        await proxy.send(call(2, "slow", seconds=30, steps=1))
        await fault_server.wait_for_request(lambda e: is_call(e, "slow"))
        began = time.monotonic()
        await fault_server.restart()
        failed = await answer_to(proxy, 2)
        assert time.monotonic() - began < PROMPT
        assert "error" in failed and "lost" in failed["error"]["message"], failed
        await proxy.send(call(3, "echo", text="new session"))
        after = await answer_to(proxy, 3)
    assert after["result"]["content"][0]["text"] == "new session"
    assert len(await fault_server.rpc_requests("initialize")) == 2, "the bridge did not re-run its handshake"


async def test_bridged_sse_cancelled_call_does_not_take_the_next_sampling(
    fault_server: FaultControl,
) -> None:
    """Cancel a call, then make one that samples: the `input_required` answers the live call (over legacy
    SSE the bridge ties a server request to the oldest live call; the cancelled one must not count)."""
    async with open_raw_proxy(fault_server.sse_url, "--transport", "sse") as proxy:
        await proxy.send(modern_request(1, "server/discover"))
        await answer_to(proxy, 1)
        await proxy.send(call(2, "slow", seconds=30, steps=1))
        await fault_server.wait_for_request(lambda e: is_call(e, "slow"))
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}})
        await proxy.send(call(3, "sample", prompt="mine"))
        asked = await answer_to(proxy, 3)
        result = asked["result"]
        assert result["resultType"] == "input_required", asked
        [(key, question)] = result["inputRequests"].items()
        assert question["method"] == "sampling/createMessage"
        answer = {"role": "assistant", "content": {"type": "text", "text": "answered"}, "model": "m"}
        retry = call(4, "sample", prompt="mine")
        retry["params"]["inputResponses"] = {key: answer}
        retry["params"]["requestState"] = result["requestState"]
        await proxy.send(retry)
        final = await answer_to(proxy, 4)
    assert final["result"]["content"][0]["text"] == "answered"


@pytest.mark.parametrize("transport", ["sse", "streamable-http"])
async def test_bridged_handshake_has_a_deadline(fault_server: FaultControl, transport: str) -> None:
    """A legacy server that accepts the bridge's `initialize` and never answers it: the client's first
    request gets an error within the read timeout (2 s here), not after the 600 s request timeout."""
    await fault_server.configure(post_delay={"seconds": 3600, "rpc_method": "initialize", "count": -1})
    url = fault_server.sse_url if transport == "sse" else fault_server.mcp_url
    args = ("--transport", transport, "--protocol", "handshake", "--read-timeout", "2")
    async with open_raw_proxy(url, *args) as proxy:
        began = time.monotonic()
        await proxy.send(modern_request(1, "server/discover"))
        answer = await answer_to(proxy, 1, timeout=30)
        elapsed = time.monotonic() - began
    assert "error" in answer, answer
    assert elapsed < 30


async def test_bridged_sdk_sse_server_gone_fails_in_flight_calls_at_once(start_sdk_server: Any) -> None:
    """The same with the official SDK's SSE server, stopped mid-call."""
    server = start_sdk_server("sse")
    async with open_raw_proxy(server.url, "--transport", "sse") as proxy:
        await proxy.send(modern_request(1, "server/discover"))
        assert "result" in await answer_to(proxy, 1)
        slow = call(2, "slow", seconds=60, steps=60)
        slow["params"]["_meta"]["progressToken"] = "p"
        await proxy.send(slow)
        await proxy.read_until(lambda m: m.get("method") == "notifications/progress", PROMPT)
        began = time.monotonic()
        server.process.terminate()
        failed = await answer_to(proxy, 2)
    assert time.monotonic() - began < PROMPT
    assert "error" in failed and "lost" in failed["error"]["message"], failed


async def test_bridged_sse_timed_out_call_does_not_take_the_next_sampling(
    fault_server: FaultControl,
) -> None:
    """The same after a request timeout instead of a cancel: the relay forgets the call in the bridge."""
    async with open_raw_proxy(fault_server.sse_url, "--transport", "sse", "--request-timeout", "3") as proxy:
        await proxy.send(modern_request(1, "server/discover"))
        await answer_to(proxy, 1)
        await proxy.send(call(2, "slow", seconds=30, steps=1))
        timed_out = await answer_to(proxy, 2)
        assert "error" in timed_out, timed_out
        await proxy.send(call(3, "sample", prompt="mine"))
        asked = await answer_to(proxy, 3)
    assert asked["result"]["resultType"] == "input_required", asked
