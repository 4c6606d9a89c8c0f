"""A 2026-07-28 client in front of the aggregate: `server/discover` answered by it, modern requests routed.

Profile a is the SDK peer over legacy SSE (its relay bridges the eras), profile b the SDK peer over Streamable
HTTP (it speaks 2026-07-28 itself). In-process with raw messages, and end to end with the SDK's
`ClientSession` in modern mode over the command's stdio.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

from mcp_sse_proxy.protocol import eras
from tests.aggregate.harness import FAST, Client, Peer, aggregate, profile
from tests.aggregate.peer import SHARED_URI

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

MODERN = "2026-07-28"


def meta(**extra: Any) -> dict[str, Any]:
    return {
        eras.PROTOCOL_VERSION_KEY: MODERN,
        eras.CLIENT_CAPABILITIES_KEY: {},
        eras.CLIENT_INFO_KEY: {"name": "modern-test", "version": "0"},
        **extra,
    }


def modern(params: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {**(params or {}), "_meta": meta(**extra)}


@asynccontextmanager
async def two_modern(start_peer: Callable[..., Peer]) -> AsyncIterator[Client]:
    a = start_peer("alpha", "sse")
    b = start_peer("beta", "streamable")
    async with aggregate([profile("a", a.url), profile("b", b.url)], initialize=False) as client:
        yield client


async def test_discover_is_the_aggregates_own(start_peer: Callable[..., Peer]) -> None:
    async with two_modern(start_peer) as client:
        # Both members are up: answered at once (the client's own wait bounds it; how soon is a benchmark's).
        result = await client.result("server/discover", modern())
        assert result["resultType"] == "complete"
        assert result["supportedVersions"][0] == MODERN
        assert set(eras.HANDSHAKE_VERSIONS) <= set(result["supportedVersions"])
        assert result["ttlMs"] == 0 and result["cacheScope"] == "private"
        assert result["_meta"][eras.SERVER_INFO_KEY]["name"] == "mcp-sse-proxy"
        capabilities = result["capabilities"]
        assert capabilities["tools"] == {"listChanged": True}
        assert capabilities["resources"] == {"listChanged": True}  # no resourceSubscriptions on listen
        assert "completions" in capabilities and "logging" in capabilities
        assert result["instructions"] == "[a]\npeer alpha instructions\n\n[b]\npeer beta instructions"
        assert client.notifications("notifications/tools/list_changed") == []


async def test_modern_lists_and_calls_are_routed(start_peer: Callable[..., Peer]) -> None:
    async with two_modern(start_peer) as client:
        await client.result("server/discover", modern())
        listing = await client.result("tools/list", modern())
        assert listing["resultType"] == "complete" and listing["ttlMs"] == 0
        names = [tool["name"] for tool in listing["tools"]]
        assert "a__echo" in names and "b__echo" in names and "a__dotted_name" in names

        for alias, server in (("a", "alpha"), ("b", "beta")):
            result = await client.result(
                "tools/call", modern({"name": f"{alias}__echo", "arguments": {"text": "m"}})
            )
            assert result["content"][0]["text"] == f"{server}:m"
            assert result.get("resultType", "complete") == "complete"

        shared = await client.result("resources/read", modern({"uri": "b+" + SHARED_URI}))
        assert shared["contents"][0]["text"] == "doc from beta"
        assert shared["contents"][0]["uri"] == "b+" + SHARED_URI
        prompt = await client.result("prompts/get", modern({"name": "a__greet", "arguments": {"who": "m"}}))
        assert prompt["messages"][0]["content"]["text"] == "alpha greets m"

        progress = await client.result(
            "tools/call",
            modern({"name": "b__slow", "arguments": {"seconds": 0.3, "steps": 3}}, progressToken="tok"),
        )
        assert progress["content"][0]["text"] == "beta:slept"
        tokens = [n["params"]["progressToken"] for n in client.notifications("notifications/progress")]
        assert tokens == ["tok"] * 3


async def test_modern_requests_are_checked(start_peer: Callable[..., Peer]) -> None:
    async with two_modern(start_peer) as client:
        future = await client.request(
            "server/discover", {"_meta": meta(**{eras.PROTOCOL_VERSION_KEY: "2099-01-01"})}
        )
        assert future["error"]["code"] == eras.UNSUPPORTED_PROTOCOL_VERSION
        assert MODERN in future["error"]["data"]["supported"]
        incomplete = await client.request("tools/list", {"_meta": {eras.PROTOCOL_VERSION_KEY: MODERN}})
        assert incomplete["error"]["code"] == -32602
        # Neither decided the era: a handshake client may still initialize.
        init = await client.initialize()
        assert init["serverInfo"]["name"] == "mcp-sse-proxy"


async def test_list_changes_reach_the_clients_listen_stream(start_peer: Callable[..., Peer]) -> None:
    async with two_modern(start_peer) as client:
        await client.result("server/discover", modern())
        await client.send(
            {
                "id": "listen",
                "method": "subscriptions/listen",
                "params": modern({"notifications": {"toolsListChanged": True}}),
            }
        )
        ack = await client.wait_for(lambda m: m.get("method") == "notifications/subscriptions/acknowledged")
        assert ack["params"]["notifications"] == {"toolsListChanged": True}
        assert ack["params"]["_meta"][eras.SUBSCRIPTION_ID_KEY] == "listen"
        assert "b__added" not in [t["name"] for t in (await client.result("tools/list", modern()))["tools"]]

        for alias in ("b", "a"):  # b speaks 2026-07-28 itself; a's listen is emulated by its bridge
            seen = len(client.notifications("notifications/tools/list_changed"))
            await client.result("tools/call", modern({"name": f"{alias}__add_tool", "arguments": {}}))
            note = await client.wait_for(
                lambda m, seen=seen: len(client.notifications("notifications/tools/list_changed")) > seen
            )
            changed = client.notifications("notifications/tools/list_changed")[-1]
            assert changed["params"]["_meta"][eras.SUBSCRIPTION_ID_KEY] == "listen", note
            names = [t["name"] for t in (await client.result("tools/list", modern()))["tools"]]
            assert f"{alias}__added" in names

        await client.notify("notifications/cancelled", {"requestId": "listen"})
    # The aggregate has stopped: the closed listen stream ended without a response, also at shutdown.
    assert not [m for m in client.received if m.get("id") == "listen"]


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_the_sdk_client_in_modern_mode_through_the_command(
    start_sdk_server: Callable[..., Peer], tmp_path: Path
) -> None:
    sse = start_sdk_server("sse", "--name", "legacy")
    streamable = start_sdk_server("streamable", "--name", "modern")
    config = tmp_path / "two.yaml"
    config.write_text(
        "profiles:\n"
        f"  legacy:\n    url: {sse.url}\n    prefix: old\n    ping_interval: 0\n"
        f"  modern:\n    url: {streamable.url}\n    ping_interval: 0\n"
    )
    env = get_default_environment() | {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_sse_proxy", "--config", str(config), "--profile", "legacy,modern"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    with (tmp_path / "proxy.stderr").open("w+") as errlog:
        try:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write, read_timeout_seconds=20) as session:
                    with anyio.fail_after(10):
                        discovered = await session.discover()
                    assert session.protocol_version == MODERN
                    assert session.server_info is not None and session.server_info.name == "mcp-sse-proxy"
                    assert "[old]" in (discovered.instructions or "")
                    assert "[modern]" in (discovered.instructions or "")

                    names = [tool.name for tool in (await session.list_tools()).tools]
                    assert "old__echo" in names and "modern__echo" in names
                    assert all(len(name) <= 64 for name in names)
                    assert text_of(await session.call_tool("old__echo", {"text": "a"})) == "a"
                    assert text_of(await session.call_tool("modern__add", {"a": 1, "b": 2})) == "3"

                    resources = [str(r.uri) for r in (await session.list_resources()).resources]
                    assert "test://static" in resources and "modern+test://static" in resources
                    read = await session.read_resource("modern+test://static")
                    assert str(read.contents[0].uri) == "modern+test://static"
        except BaseException:
            errlog.seek(0)
            sys.stderr.write(errlog.read()[-10000:])
            raise


async def modern_tools(client: Client) -> list[str]:
    return [tool["name"] for tool in (await client.result("tools/list", modern()))["tools"]]


async def wait_modern_tools(
    client: Client, predicate: Callable[[list[str]], bool], timeout: float = 20.0
) -> list[str]:
    """Wait for a `tools/list_changed` on the listen stream after which the tools satisfy `predicate`."""

    def changes() -> int:
        return len(client.notifications("notifications/tools/list_changed"))

    with anyio.fail_after(timeout):
        while True:
            seen = changes()
            names = await modern_tools(client)
            if predicate(names):
                return names
            await client.wait_for(lambda m, seen=seen: changes() > seen, timeout)


@pytest.mark.parametrize("transport", ["streamable", "sse"])
async def test_a_modern_session_survives_a_killed_profile(
    start_peer: Callable[..., Peer], transport: str, record_property: Callable[[str, object], None]
) -> None:
    """b speaks 2026-07-28 (streamable) or is bridged (sse); health checks are off (60 s)."""
    a = start_peer("alpha", "sse" if transport == "streamable" else "streamable")
    b = start_peer("beta", transport)
    settings = replace(FAST, health_interval=60.0)
    async with aggregate([profile("a", a.url), profile("b", b.url)], settings, initialize=False) as client:
        await client.result("server/discover", modern())
        listen = modern({"notifications": {"toolsListChanged": True}})
        await client.send({"id": "listen", "method": "subscriptions/listen", "params": listen})
        assert "b__echo" in await modern_tools(client)

        killed = anyio.current_time()
        b.stop()
        names = await wait_modern_tools(client, lambda names: "b__echo" not in names)
        vanish = anyio.current_time() - killed
        assert "a__echo" in names
        down = await client.result("tools/call", modern({"name": "b__echo", "arguments": {"text": "z"}}))
        assert down["isError"] is True and "profile b" in down["content"][0]["text"]
        assert down["resultType"] == "complete"
        # The announcement is debounced: it may follow the list that already lacks b's tools.
        changed = await client.wait_for(
            lambda m: m.get("method") == "notifications/tools/list_changed" and "id" not in m
        )
        assert changed["params"]["_meta"][eras.SUBSCRIPTION_ID_KEY] == "listen"

        b.start()
        listening = anyio.current_time()
        await wait_modern_tools(client, lambda names: "b__echo" in names)
        back = anyio.current_time() - listening
        call = modern({"name": "b__echo", "arguments": {"text": "back"}})
        assert (await client.result("tools/call", call))["content"][0]["text"] == "beta:back"
        call = modern({"name": "a__echo", "arguments": {"text": "a"}})
        assert (await client.result("tools/call", call))["content"][0]["text"] == "alpha:a"
    record_property(f"modern_{transport}_vanish_s", round(vanish, 3))
    record_property(f"modern_{transport}_return_s", round(back, 3))
    print(f"\nrecovery figures (2026-07-28, {transport}): vanish {vanish:.3f} s, return {back:.3f} s")
