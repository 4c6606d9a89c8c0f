"""One profile is a transparent relay: message for message, the client sees what a direct connection sees.

The same request sequence goes to an official-SDK Streamable HTTP server directly (a plain httpx2 client
speaking the transport) and through the proxy (raw JSON-RPC lines on its stdio); every result and every
notification, ids and progress tokens included, must be identical.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest

from tests.integration.conftest import RunningServer

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

INIT_PARAMS = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "transparency-test", "version": "1"},
}
SEQUENCE: list[tuple[Any, str, dict[str, Any] | None]] = [
    (2, "tools/list", None),
    ("p", "prompts/list", None),
    (3, "resources/list", None),
    ("templates", "resources/templates/list", None),
    (4, "tools/call", {"name": "echo", "arguments": {"text": "héllo ☃"}}),
    (
        5,
        "tools/call",
        {"name": "slow", "arguments": {"seconds": 0.3, "steps": 3}, "_meta": {"progressToken": "tok"}},
    ),
    ("6", "prompts/get", {"name": "greet", "arguments": {"name": "Ada"}}),
    (7, "resources/read", {"uri": "test://static"}),
    (8, "tools/call", {"name": "no-such-tool", "arguments": {}}),
    (9, "ping", None),
]


def request(msg_id: Any, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


async def direct_exchanges(url: str) -> list[list[dict[str, Any]]]:
    """For each request: every message the server sent for it, in order, over Streamable HTTP."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    out: list[list[dict[str, Any]]] = []
    async with httpx2.AsyncClient(timeout=20) as client:

        async def post(message: dict[str, Any]) -> list[dict[str, Any]]:
            async with client.stream("POST", url, content=json.dumps(message), headers=headers) as resp:
                if "Mcp-Session-Id" not in headers and resp.headers.get("mcp-session-id"):
                    headers["Mcp-Session-Id"] = resp.headers["mcp-session-id"]
                if resp.status_code == 202:
                    return []
                if resp.headers["content-type"].startswith("application/json"):
                    return [json.loads(await resp.aread())]
                received = []
                async for event in httpx2.EventSource(resp):
                    if event.data:
                        received.append(json.loads(event.data))
                return received

        out.append(await post(request(1, "initialize", INIT_PARAMS)))
        headers["MCP-Protocol-Version"] = out[0][-1]["result"]["protocolVersion"]
        await post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        for msg_id, method, params in SEQUENCE:
            out.append(await post(request(msg_id, method, params)))
    return out


async def proxied_exchanges(raw_proxy: Any, url: str) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    async with raw_proxy(url, "--ping-interval", "0") as proxy:
        await proxy.send(request(1, "initialize", INIT_PARAMS))
        answer, before = await proxy.read_until(lambda m: m.get("id") == 1 and "method" not in m)
        out.append([*before, answer])
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        for msg_id, method, params in SEQUENCE:
            await proxy.send(request(msg_id, method, params))
            answer, before = await proxy.read_until(
                lambda m, i=msg_id: m.get("id") == i and "method" not in m
            )
            out.append([*before, answer])
    return out


async def test_single_profile_relay_is_message_for_message_identical(
    sdk_streamable_server: RunningServer, raw_proxy: Any
) -> None:
    with anyio.fail_after(60):
        direct = await direct_exchanges(sdk_streamable_server.url)
        proxied = await proxied_exchanges(raw_proxy, sdk_streamable_server.url)
    assert len(direct) == len(proxied) == len(SEQUENCE) + 1
    progress = [m for m in proxied[6] if m.get("method") == "notifications/progress"]
    assert [m["params"]["progressToken"] for m in progress] == ["tok"] * 3  # the client's token, as sent
    for sent, got in zip(direct, proxied, strict=True):
        assert got == sent
