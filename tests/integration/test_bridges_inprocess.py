"""The `ModernToHandshake` bridge object driven directly, in process, against the fault server over legacy SSE.

No proxy subprocess and no relay: the test is the relay, calling `send` and `forget` and reading what the
bridge delivers, so each case waits on the message it expects instead of on wall clocks.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from mcp_sse_proxy.bridges import ModernToHandshake
from mcp_sse_proxy.config.model import Profile
from mcp_sse_proxy.errors import UpstreamError
from mcp_sse_proxy.httpclient import build_client
from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.messages import Kind, Message
from mcp_sse_proxy.transports.sse import SseUpstream
from tests.servers.fault_server import FaultServer, running_fault_server

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(60)]

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {"sampling": {}},
    "io.modelcontextprotocol/clientInfo": {"name": "in-process", "version": "0"},
}
WAIT = 10.0


class Client:
    """What the bridge delivers, readable by id."""

    def __init__(self) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[Message](math.inf)

    async def deliver(self, message: Message) -> None:
        self.send.send_nowait(message)

    async def answer_to(self, msg_id: Any) -> dict[str, Any]:
        with anyio.fail_after(WAIT):
            async for message in self.receive:
                if message.kind is Kind.RESPONSE and message.id == msg_id:
                    return dict(message.body)
        raise AssertionError("the delivery stream ended")


def call(msg_id: Any, tool: str, **arguments: Any) -> Message:
    return jsonrpc.request(msg_id, "tools/call", {"name": tool, "arguments": arguments, "_meta": META})


@asynccontextmanager
async def bridged(**profile: Any) -> AsyncIterator[tuple[ModernToHandshake, Client, FaultServer]]:
    async with running_fault_server() as (server, base_url):
        settings = Profile(name="test", url=base_url + "/sse", transport="sse", **profile)
        client = Client()
        lost: list[str] = []
        async with build_client(settings) as http, anyio.create_task_group() as tg:
            bridge = ModernToHandshake(tg, client.deliver, META, settings)
            inner = SseUpstream(http, settings.url, settings, tg, bridge.from_upstream, lost.append)
            bridge.attach(inner)
            await bridge.open()
            try:
                yield bridge, client, server
            finally:
                await bridge.close()
                tg.cancel_scope.cancel()


async def wait_for_call(server: FaultServer, tool: str) -> None:
    await server.wait_for_log(
        lambda requests: any(
            isinstance(e["body"], dict) and (e["body"].get("params") or {}).get("name") == tool
            for e in requests
        ),
        WAIT,
    )


async def test_forgotten_call_does_not_take_the_next_sampling() -> None:
    """The relay forgets a call (client cancel or timeout) without any notification reaching the bridge:
    a later sampling request must go to the live call, not to the forgotten one."""
    async with bridged() as (bridge, client, server):
        await bridge.send(call(1, "slow", seconds=30, steps=1))
        await wait_for_call(server, "slow")
        bridge.forget(1)
        await bridge.send(call(2, "sample", prompt="mine"))
        asked = await client.answer_to(2)
        assert asked["result"]["resultType"] == "input_required", asked
        state = asked["result"]["requestState"]
        answer = {"role": "assistant", "content": {"type": "text", "text": "live"}, "model": "m"}
        retry = call(3, "sample", prompt="mine")
        retry = retry.with_body(
            {
                **retry.body,
                "params": {**retry.params, "inputResponses": {"input-1": answer}, "requestState": state},
            }
        )
        await bridge.send(retry)
        final = await client.answer_to(3)
    assert final["result"]["content"][0]["text"] == "live"


async def test_forgotten_calls_answer_is_dropped() -> None:
    async with bridged() as (bridge, client, server):
        await bridge.send(call(1, "slow", seconds=0.3, steps=1))
        bridge.forget(1)
        await bridge.send(call(2, "echo", text="after"))
        after = await client.answer_to(2)
        await wait_for_call(server, "slow")
        with anyio.move_on_after(1.0):  # the slow call ends in 0.3 s; its answer must not come
            late = await client.answer_to(1)
            raise AssertionError(f"a forgotten call was answered: {late}")
    assert after["result"]["content"][0]["text"] == "after"


async def test_a_retry_after_the_session_ended_is_answered_at_once() -> None:
    """The server session that asked for input ends; the client's retry gets an error (it used to be sent
    to the new session as an answer to a request that session never made, and wait for the timeout)."""
    async with bridged() as (bridge, client, server):
        await bridge.send(call(1, "sample", prompt="q"))
        asked = await client.answer_to(1)
        state = asked["result"]["requestState"]
        server.restart()
        await bridge.open()  # what the relay does on a lost session
        retry = call(2, "sample", prompt="q")
        retry = retry.with_body(
            {
                **retry.body,
                "params": {**retry.params, "inputResponses": {"input-1": {}}, "requestState": state},
            }
        )
        await bridge.send(retry)
        answer = await client.answer_to(2)
    assert answer["error"]["code"] == jsonrpc.INVALID_PARAMS, answer


async def test_the_bridged_handshake_has_a_deadline() -> None:
    async with bridged(read_timeout=0.5) as (bridge, client, server):
        server.faults.update({"post_delay": {"seconds": 3600, "rpc_method": "initialize", "count": -1}})
        with anyio.fail_after(WAIT), pytest.raises(UpstreamError, match="within 0.5 s"):
            await bridge.handshake()
