"""The merged server with real SDK peers (one legacy SSE, one Streamable HTTP), driven in-process."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
import pytest

from tests.aggregate.harness import FAST, Client, Peer, aggregate, profile
from tests.aggregate.peer import LONG_TOOL, SHARED_URI
from tests.waiting import eventually_async

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


@asynccontextmanager
async def two(start_peer: Callable[..., Peer], *peer_args: str, **kwargs: Any) -> AsyncIterator[Client]:
    """`alpha` over legacy SSE as profile a, `beta` over Streamable HTTP as profile b."""
    a = start_peer("alpha", "sse", *peer_args)
    b = start_peer("beta", "streamable", *peer_args)
    async with aggregate([profile("a", a.url), profile("b", b.url)], **kwargs) as client:
        yield client


async def sampled(body: dict[str, Any]) -> dict[str, Any]:
    text = body["params"]["messages"][0]["content"]["text"]
    return {"role": "assistant", "content": {"type": "text", "text": f"sampled {text}"}, "model": "m"}


async def test_initialize_is_the_aggregators_own(start_peer: Callable[..., Peer]) -> None:
    async with two(start_peer) as client:
        result = client.received[0]["result"]
        assert result["serverInfo"]["name"] == "mcp-sse-proxy"
        assert result["capabilities"]["tools"] == {"listChanged": True}
        assert result["capabilities"]["resources"] == {"subscribe": True, "listChanged": True}
        assert "completions" in result["capabilities"] and "logging" in result["capabilities"]
        assert result["instructions"] == "[a]\npeer alpha instructions\n\n[b]\npeer beta instructions"
        assert await client.result("ping") == {}


async def test_colliding_tools_are_prefixed_and_routed_to_their_server(
    start_peer: Callable[..., Peer],
) -> None:
    async with two(start_peer) as client:
        names = await client.tool_names()
        assert "a__echo" in names and "b__echo" in names
        assert "a__dotted_name" in names  # `dotted.name` sanitised
        assert await client.text("a__echo", {"text": "1"}) == "alpha:1"
        assert await client.text("b__echo", {"text": "2"}) == "beta:2"
        assert await client.text("b__dotted_name") == "beta:dotted"


async def test_a_sixty_character_name_is_cut_with_a_stable_hash(start_peer: Callable[..., Peer]) -> None:
    a = start_peer("alpha", "streamable")
    b = start_peer("beta", "sse")
    async with aggregate([profile("alpha", a.url), profile("b", b.url)]) as client:
        names = await client.tool_names()
        digest = hashlib.sha256(LONG_TOOL.encode()).hexdigest()[:6]
        long_a = [n for n in names if n.endswith("_" + digest) and n.startswith("alpha__")]
        assert len(long_a) == 1 and len(long_a[0]) == 64
        assert "b__" + LONG_TOOL in names  # 63 characters: fits as it is
        assert await client.text(long_a[0]) == "alpha:long"
        assert await client.text("b__" + LONG_TOOL) == "beta:long"


async def test_colliding_prompts_and_completion_go_to_their_owner(start_peer: Callable[..., Peer]) -> None:
    async with two(start_peer) as client:
        prompts = [p["name"] for p in (await client.result("prompts/list"))["prompts"]]
        assert prompts == ["a__greet", "b__greet"]
        result = await client.result("prompts/get", {"name": "b__greet", "arguments": {"who": "you"}})
        assert result["messages"][0]["content"]["text"] == "beta greets you"
        completion = await client.result(
            "completion/complete",
            {"ref": {"type": "ref/prompt", "name": "a__greet"}, "argument": {"name": "who", "value": "x"}},
        )
        assert completion["completion"]["values"] == ["alpha-x"]
        unknown = await client.request("prompts/get", {"name": "greet"})
        assert unknown["error"]["code"] == -32602


async def test_the_same_uri_on_two_servers(start_peer: Callable[..., Peer]) -> None:
    async with two(start_peer) as client:
        uris = [r["uri"] for r in (await client.result("resources/list"))["resources"]]
        assert uris == [SHARED_URI, "alpha://own", "b+" + SHARED_URI, "beta://own"]
        templates = [
            t["uriTemplate"] for t in (await client.result("resources/templates/list"))["resourceTemplates"]
        ]
        assert templates == ["item://{n}", "b+item://{n}"]

        first = await client.result("resources/read", {"uri": SHARED_URI})
        assert first["contents"][0]["text"] == "doc from alpha"
        second = await client.result("resources/read", {"uri": "b+" + SHARED_URI})
        assert second["contents"] == [{**second["contents"][0], "uri": "b+" + SHARED_URI}]
        assert second["contents"][0]["text"] == "doc from beta"
        assert (await client.result("resources/read", {"uri": "item://3"}))["contents"][0][
            "text"
        ] == "alpha item 3"
        item = await client.result("resources/read", {"uri": "b+item://3"})
        assert item["contents"][0]["text"] == "beta item 3" and item["contents"][0]["uri"] == "b+item://3"
        assert (await client.result("resources/read", {"uri": "beta://own"}))["contents"][0][
            "text"
        ] == "own of beta"

        # Links in tool results point where the lists do.
        link = await client.call("b__link")
        assert link["content"][1]["uri"] == "b+" + SHARED_URI
        assert (await client.call("a__link"))["content"][1]["uri"] == SHARED_URI

        unknown = await client.request("resources/read", {"uri": "nobody://x"})
        assert unknown["error"]["code"] == -32602


async def test_paginated_servers_are_read_to_the_end_and_served_in_pages(
    start_peer: Callable[..., Peer],
) -> None:
    settings = replace(FAST, page_size=4)
    async with two(start_peer, "--page-size", "2", "--extra-tools", "5", settings=settings) as client:
        names: list[str] = []
        cursor = None
        for _ in range(50):
            result = await client.result("tools/list", {"cursor": cursor} if cursor else None)
            assert len(result["tools"]) <= 4
            names += [t["name"] for t in result["tools"]]
            cursor = result.get("nextCursor")
            if cursor is None:
                break
        assert len(names) == len(set(names)) == 2 * 14
        assert {"a__extra_4", "b__extra_4", "b__add_tool"} <= set(names)
        resources = await client.result("resources/list")
        assert len(resources["resources"]) == 4 and "nextCursor" not in resources

        stale = (await client.result("tools/list"))["nextCursor"]
        await client.call("b__add_tool")  # the list changes: older cursors are stale
        await client.wait_for(lambda m: m.get("method") == "notifications/tools/list_changed")
        assert (await client.request("tools/list", {"cursor": stale}))["error"]["code"] == -32602
        assert (await client.request("tools/list", {"cursor": "forged"}))["error"]["code"] == -32602


async def test_progress_reaches_the_client_with_its_token(start_peer: Callable[..., Peer]) -> None:
    async with two(start_peer) as client:
        params = {
            "name": "b__slow",
            "arguments": {"seconds": 0.4, "steps": 3},
            "_meta": {"progressToken": "tok"},
        }
        result = await client.result("tools/call", params)
        assert result["content"][0]["text"] == "beta:slept"
        progress = client.notifications("notifications/progress")
        assert [p["params"]["progressToken"] for p in progress] == ["tok"] * 3
        assert progress[-1]["params"]["message"] == "beta step 3"


async def test_cancellation_reaches_only_the_owning_server(start_peer: Callable[..., Peer]) -> None:
    async with two(start_peer) as client:
        calls = {}
        for alias in ("a", "b"):
            arguments = {"seconds": 20, "steps": 40, "tag": alias}
            params = {"name": f"{alias}__slow", "arguments": arguments, "_meta": {"progressToken": alias}}
            calls[alias] = {"id": f"call-{alias}", "method": "tools/call", "params": params}
            await client.send(calls[alias])
        for alias in ("a", "b"):
            await client.wait_for(lambda m, alias=alias: m.get("params", {}).get("progressToken") == alias)

        async def cancelled(alias: str) -> bool:
            return json.loads(await client.text(f"{alias}__cancelled_calls")) == [alias]

        await client.notify("notifications/cancelled", {"requestId": "call-b", "reason": "test"})
        await eventually_async(lambda: cancelled("b"), interval=0.1, what="b's call cancelled")
        assert json.loads(await client.text("a__cancelled_calls")) == []
        await client.notify("notifications/cancelled", {"requestId": "call-a"})
        await eventually_async(lambda: cancelled("a"), interval=0.1, what="a's call cancelled")
    # The aggregate has stopped: a cancelled call was never answered, not even at shutdown.
    assert not [m for m in client.received if m.get("id") in ("call-a", "call-b")]


async def test_sampling_requests_get_proxy_ids_and_answers_go_back(start_peer: Callable[..., Peer]) -> None:
    async with two(
        start_peer, capabilities={"sampling": {}}, handlers={"sampling/createMessage": sampled}
    ) as client:
        async with anyio.create_task_group() as tg:
            answers: dict[str, str] = {}

            async def call(alias: str) -> None:
                answers[alias] = await client.text(f"{alias}__sample", {"prompt": alias})

            tg.start_soon(call, "a")
            tg.start_soon(call, "b")
        assert answers == {"a": "alpha:sampled a", "b": "beta:sampled b"}
        requests = [m for m in client.received if m.get("method") == "sampling/createMessage"]
        assert len(requests) == 2
        ids = {m["id"] for m in requests}
        assert len(ids) == 2 and all(isinstance(i, str) and i.startswith("agg-") for i in ids)


async def test_log_messages_name_their_profile(start_peer: Callable[..., Peer]) -> None:
    async with two(start_peer) as client:
        assert await client.result("logging/setLevel", {"level": "debug"}) == {}
        await client.call("b__log", {"message": "hello"})
        note = await client.wait_for(lambda m: m.get("method") == "notifications/message")
        assert note["params"]["logger"] == "b/peer" and note["params"]["data"] == "hello"


async def test_a_changed_list_is_announced_once_and_the_new_tool_routed(
    start_peer: Callable[..., Peer],
) -> None:
    async with two(start_peer) as client:
        await client.tool_names()
        assert await client.text("a__add_tool") == "alpha:added"
        await client.wait_for(lambda m: m.get("method") == "notifications/tools/list_changed")
        assert "a__added" in await client.tool_names()
        assert await client.text("a__added") == "alpha:added"
        # A second change, on b, announced after it: a repeat of a's announcement would have come before.
        assert await client.text("b__add_tool") == "beta:added"
        await client.wait_for(
            lambda m: (
                m.get("method") == "notifications/tools/list_changed"
                and len(client.notifications("notifications/tools/list_changed")) >= 2
            )
        )
        assert "b__added" in await client.tool_names()
        assert len(client.notifications("notifications/tools/list_changed")) == 2


async def test_an_unchanged_list_is_not_announced(start_sdk_server: Callable[..., Peer]) -> None:
    a = start_sdk_server("sse")
    b = start_sdk_server("streamable")
    async with aggregate([profile("a", a.url), profile("b", b.url)]) as client:
        await client.tool_names()
        await client.call("b__change_tools")  # the server announces a change that changes nothing
        # Watching for silence is the assertion itself (an absence sends no event), not synchronisation.
        await anyio.sleep(0.8)
        assert client.notifications("notifications/tools/list_changed") == []


async def test_protocol_errors_are_answered_by_the_aggregator(start_peer: Callable[..., Peer]) -> None:
    async with two(start_peer) as client:
        assert (await client.request("no/such/method"))["error"]["code"] == -32601
        assert (await client.request("tools/call", {"name": "echo"}))["error"]["code"] == -32602
        assert "2026-07-28" in (await client.result("server/discover"))["supportedVersions"]
        slow = {"name": "a__slow", "arguments": {"seconds": 1, "steps": 1}}
        await client.send({"id": 99, "method": "tools/call", "params": slow})
        duplicate = await client.request("ping", msg_id=99)
        assert duplicate["error"]["code"] == -32600
        answer = await client.wait_for(lambda m: m.get("id") == 99 and "result" in m)
        assert answer["result"]["content"][0]["text"] == "alpha:slept"


async def test_subscriptions_route_to_the_owner_and_updates_name_the_exposed_uri(
    start_sdk_server: Callable[..., Peer],
) -> None:
    a = start_sdk_server("sse")
    b = start_sdk_server("streamable")
    async with aggregate([profile("a", a.url), profile("b", b.url)]) as client:
        uris = [r["uri"] for r in (await client.result("resources/list"))["resources"]]
        assert "test://counter" in uris and "b+test://counter" in uris
        assert await client.result("resources/subscribe", {"uri": "b+test://counter"}) == {}
        assert await client.text("a__touch") == "not subscribed"  # a's counter was not subscribed
        assert await client.text("b__touch") == "notified"
        note = await client.wait_for(lambda m: m.get("method") == "notifications/resources/updated")
        assert note["params"]["uri"] == "b+test://counter"
        assert await client.result("resources/unsubscribe", {"uri": "b+test://counter"}) == {}
        assert await client.text("b__touch") == "not subscribed"
