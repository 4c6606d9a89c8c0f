"""The proxy against the official SDK server over legacy HTTP+SSE, driven by the SDK's own stdio client.

Every test starts `python -m mcp_sse_proxy --sse-url …/sse --transport sse` under `ClientSession` and checks that
what the client gets is what the server sent: results, notifications, server requests and their answers, big
payloads in both directions, many calls at once, and a tool call far longer than any idle timeout.
Measured figures (overlap of 50 calls, 10 MB timings) are printed (`-s`) and recorded as junit properties.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from tests.integration.conftest import RunningServer
from tests.servers.sdk_server import (
    LONG_TOOL_NAME,
    STATIC_RESOURCE_TEXT,
    STATIC_RESOURCE_URI,
    SUBSCRIBABLE_RESOURCE_URI,
    big_text,
)
from tests.waiting import eventually

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.integration,
    pytest.mark.timeout(60),
    # Handshake-era methods the SDK marks as deprecated for 2026-07-28 are what a legacy server speaks.
    pytest.mark.filterwarnings("ignore:.*2026-07-28"),
]

SSE = ("--transport", "sse")
EXPECTED_TOOLS = {"echo", "add", "slow", "big", "size_of", "sample", "elicit", "list_roots", "log", "whoami"}
TEN_MB = 10_000_000


# ---- helpers -------------------------------------------------------------------------------------------------


def text_of(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def record(record_property: Callable[[str, Any], None], name: str, value: float) -> None:
    """Keep a measured figure in the junit report and print it for `-s` runs."""
    record_property(name, round(value, 3))
    print(f"[figure] {name} = {value:.3f}")


async def sampling_callback(
    context: ClientRequestContext, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    content = params.messages[0].content
    text = content.text if isinstance(content, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"sampled:{text}"), model="test-model"
    )


async def elicitation_callback(
    context: ClientRequestContext, params: types.ElicitRequestParams
) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"answer": f"yes to {params.message}"})


async def list_roots_callback(context: ClientRequestContext) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///workspace"), types.Root(uri="file:///other")])


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition fed by SDK callbacks (they run in the session's tasks; there is no event to wait on)."""
    await eventually(predicate, timeout)


# ---- handshake and plain requests ----------------------------------------------------------------------------


async def test_initialize_and_tools_match_a_direct_connection(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    async with sse_client(sdk_sse_server.url) as (read_stream, write_stream):
        async with ClientSession(read_stream, write_stream, read_timeout_seconds=10) as direct:
            with anyio.fail_after(10):
                direct_init = await direct.initialize()
                direct_tools = await direct.list_tools()
    async with proxy_session(sdk_sse_server.url, *SSE) as session:
        init = session.initialize_result
        assert init is not None
        assert init.server_info.name == "sdk-test-server"
        assert init.instructions == "test server sdk-test-server"
        assert init.protocol_version == direct_init.protocol_version
        assert init.capabilities == direct_init.capabilities
        tools = await session.list_tools()
        assert EXPECTED_TOOLS | {LONG_TOOL_NAME} <= {tool.name for tool in tools.tools}
        # The client cannot tell the proxy from the server.
        assert tools.model_dump() == direct_tools.model_dump()
        assert text_of(await session.call_tool("echo", {"text": 'héllo ☃ \n\t"q"'})) == 'héllo ☃ \n\t"q"'
        assert text_of(await session.call_tool("add", {"a": 2, "b": 3.5})) == "5.5"
        assert await session.send_ping() == types.EmptyResult()


async def test_unknown_tool_error_passes_through(sdk_sse_server: RunningServer, proxy_session: Any) -> None:
    async with proxy_session(sdk_sse_server.url, *SSE) as session:
        result = await session.call_tool("no_such_tool", {})
        assert result.is_error
        assert "no_such_tool" in result.content[0].text  # type: ignore[union-attr]
        # A JSON-RPC error from the server reaches the client as the server wrote it.
        with pytest.raises(MCPError) as caught:
            await session.complete(
                types.PromptReference(type="ref/prompt", name="nope"), {"name": "a", "value": "b"}
            )
        assert caught.value.code == types.METHOD_NOT_FOUND
        assert text_of(await session.call_tool("echo", {"text": "still fine"})) == "still fine"


async def test_progress_notifications_arrive_in_order(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    async with proxy_session(sdk_sse_server.url, *SSE) as session:
        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total, message))

        result = await session.call_tool("slow", {"seconds": 0.5, "steps": 5}, progress_callback=on_progress)
        assert text_of(result) == "slept 0.5"
        assert progress == [(step, 5, f"step {step}/5") for step in range(1, 6)]


async def test_cancelled_call_leaves_the_proxy_usable(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    async with proxy_session(sdk_sse_server.url, *SSE) as session:
        started = anyio.Event()
        outcome: list[str] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            started.set()

        async def long_call(scope: anyio.CancelScope) -> None:
            with scope:
                await session.call_tool("slow", {"seconds": 30, "steps": 60}, progress_callback=on_progress)
                outcome.append("finished")

        scope = anyio.CancelScope()
        began = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(long_call, scope)
            with anyio.fail_after(10):
                await started.wait()  # the tool is running on the server
            scope.cancel()
        assert outcome == [] and scope.cancelled_caught
        assert time.monotonic() - began < 10
        # The proxy is still fine: new calls go through, concurrently with nothing left over.
        assert text_of(await session.call_tool("echo", {"text": "after cancel"})) == "after cancel"
        assert text_of(await session.call_tool("slow", {"seconds": 0.1, "steps": 1})) == "slept 0.1"


# ---- the server asks the client ------------------------------------------------------------------------------


async def test_sampling_elicitation_and_roots_round_trips(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    async with proxy_session(
        sdk_sse_server.url,
        *SSE,
        sampling_callback=sampling_callback,
        elicitation_callback=elicitation_callback,
        list_roots_callback=list_roots_callback,
    ) as session:
        assert text_of(await session.call_tool("sample", {"prompt": "hi there"})) == "sampled:hi there"
        elicited = json.loads(text_of(await session.call_tool("elicit", {"message": "ok?"})))
        assert elicited == {"action": "accept", "content": {"answer": "yes to ok?"}}
        roots = json.loads(text_of(await session.call_tool("list_roots", {})))
        assert roots == ["file:///workspace", "file:///other"]
        # Server requests interleaved with client requests keep their answers apart.
        async with anyio.create_task_group() as tg:
            answers: dict[int, str] = {}

            async def ask(index: int) -> None:
                answers[index] = text_of(await session.call_tool("sample", {"prompt": f"p{index}"}))

            for index in range(8):
                tg.start_soon(ask, index)
        assert answers == {index: f"sampled:p{index}" for index in range(8)}


async def test_logging_notifications_after_set_level(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with proxy_session(sdk_sse_server.url, *SSE, logging_callback=on_log) as session:
        assert await session.set_logging_level("warning") == types.EmptyResult()
        assert text_of(await session.call_tool("log", {"level": "warning", "message": "careful"})) == "logged"
        assert text_of(await session.call_tool("log", {"level": "error", "message": "broken"})) == "logged"
        await wait_until(lambda: len(logs) >= 2)
        assert [(entry.level, entry.data, entry.logger) for entry in logs] == [
            ("warning", "careful", "sdk_server"),
            ("error", "broken", "sdk_server"),
        ]


# ---- resources and prompts -----------------------------------------------------------------------------------


async def test_resources_list_read_templates_and_subscribe(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    updates: list[types.ResourceUpdatedNotification] = []
    problems: list[Exception] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(message)
        elif isinstance(message, Exception):
            problems.append(message)

    async with proxy_session(sdk_sse_server.url, *SSE, message_handler=on_message) as session:
        listed = await session.list_resources()
        uris = {str(resource.uri) for resource in listed.resources}
        assert {STATIC_RESOURCE_URI, SUBSCRIBABLE_RESOURCE_URI} <= uris
        static = await session.read_resource(STATIC_RESOURCE_URI)
        assert isinstance(static.contents[0], types.TextResourceContents)
        assert static.contents[0].text == STATIC_RESOURCE_TEXT
        templates = await session.list_resource_templates()
        assert [template.uri_template for template in templates.resource_templates] == ["test://item/{n}"]
        item = await session.read_resource("test://item/42")
        assert item.contents[0].text == "item 42"  # type: ignore[union-attr]

        assert session.server_capabilities is not None and session.server_capabilities.resources is not None
        assert session.server_capabilities.resources.subscribe
        await session.subscribe_resource(SUBSCRIBABLE_RESOURCE_URI)
        assert text_of(await session.call_tool("touch", {})) == "notified"
        await wait_until(lambda: bool(updates))
        assert str(updates[0].params.uri) == SUBSCRIBABLE_RESOURCE_URI
        await session.unsubscribe_resource(SUBSCRIBABLE_RESOURCE_URI)
        assert text_of(await session.call_tool("touch", {})) == "not subscribed"
        assert len(updates) == 1
    assert problems == []


async def test_prompts_list_and_get(sdk_sse_server: RunningServer, proxy_session: Any) -> None:
    async with proxy_session(sdk_sse_server.url, *SSE) as session:
        prompts = await session.list_prompts()
        greet = next(prompt for prompt in prompts.prompts if prompt.name == "greet")
        assert [argument.name for argument in greet.arguments or []] == ["name"]
        got = await session.get_prompt("greet", {"name": "Ada Lovelace"})
        assert got.messages[0].role == "user"
        assert got.messages[0].content.text == "Hello, Ada Lovelace!"  # type: ignore[union-attr]


# ---- concurrency and payloads --------------------------------------------------------------------------------


async def test_fifty_concurrent_calls_overlap(
    sdk_sse_server: RunningServer, proxy_session: Any, record_property: Callable[[str, Any], None]
) -> None:
    seconds = 1.0
    async with proxy_session(sdk_sse_server.url, *SSE) as session:
        began = time.monotonic()
        assert (
            text_of(await session.call_tool("slow", {"seconds": seconds, "steps": 1})) == f"slept {seconds}"
        )
        one_call = time.monotonic() - began

        results: dict[int, str] = {}
        running: set[int] = set()  # calls the server has reported progress on and not yet answered
        most_running = 0

        async def call(index: int) -> None:
            nonlocal most_running

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                nonlocal most_running
                running.add(index)
                most_running = max(most_running, len(running))

            # A distinct echo after each slow call proves every answer went to its own request.
            # 3 s each, progress every 0.5 s: long enough for all of them to be sent meanwhile.
            await session.call_tool("slow", {"seconds": 3.0, "steps": 6}, progress_callback=on_progress)
            running.discard(index)
            results[index] = text_of(await session.call_tool("echo", {"text": f"call {index}"}))

        began = time.monotonic()
        async with anyio.create_task_group() as tg:
            for index in range(50):
                tg.start_soon(call, index)
        wall = time.monotonic() - began
    assert results == {index: f"call {index}" for index in range(50)}
    record(record_property, "one_slow_call_s", one_call)
    record(record_property, "fifty_concurrent_slow_calls_s", wall)
    # Serialized, one call at a time would be running on the server; overlapping, most of them at once.
    # (The wall time is a figure, recorded above, not asserted.)
    assert most_running >= 10, f"at most {most_running} calls ran at once: they did not overlap"


@pytest.mark.timeout(90)
async def test_one_and_ten_megabyte_results_arrive_intact(
    sdk_sse_server: RunningServer, proxy_session: Any, record_property: Callable[[str, Any], None]
) -> None:
    async with proxy_session(sdk_sse_server.url, *SSE, read_timeout=60) as session:
        for size in (1_000_000, TEN_MB):
            began = time.monotonic()
            text = text_of(await session.call_tool("big", {"size": size}))
            elapsed = time.monotonic() - began
            assert len(text) == size
            assert text == big_text(size)
            record(record_property, f"result_{size // 1_000_000}mb_s", elapsed)
        # The session is still in step afterwards.
        assert text_of(await session.call_tool("echo", {"text": "after big"})) == "after big"


@pytest.mark.timeout(90)
async def test_ten_megabyte_request(
    sdk_sse_server: RunningServer, proxy_session: Any, record_property: Callable[[str, Any], None]
) -> None:
    payload = "é" + "x" * (TEN_MB - 2) + "☃"
    async with proxy_session(sdk_sse_server.url, *SSE, read_timeout=60) as session:
        began = time.monotonic()
        assert text_of(await session.call_tool("size_of", {"data": payload})) == str(TEN_MB)
        record(record_property, "request_10mb_s", time.monotonic() - began)
        assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"


# ---- configuration that reaches the server -------------------------------------------------------------------


async def test_env_prefixes_flag_forwards_matching_variables(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    env = {"MYAPP_TOKEN": "t-1", "MYAPP_REGION": "eu", "OTHER_KEY": "o", "UNRELATED": "no", "XMYAPP_NO": "no"}
    async with proxy_session(sdk_sse_server.url, *SSE, "--env-prefixes", "MYAPP_,OTHER_", env=env) as session:
        forwarded = json.loads(text_of(await session.call_tool("env_echo", {})))
        assert forwarded == {"MYAPP_TOKEN": "t-1", "MYAPP_REGION": "eu", "OTHER_KEY": "o"}
        # Merged into an env the client sent; the client's own values win.
        merged = json.loads(
            text_of(await session.call_tool("env_echo", {"env": {"MYAPP_TOKEN": "mine", "EXTRA": "x"}}))
        )
        assert merged == {"MYAPP_TOKEN": "mine", "MYAPP_REGION": "eu", "OTHER_KEY": "o", "EXTRA": "x"}
        # Only tools/call arguments change: other tools still get exactly what the client sent.
        assert text_of(await session.call_tool("echo", {"text": "plain"})) == "plain"


async def test_env_prefixes_from_environment_and_off_by_default(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    env = {"ST_PROXY_ENV_PREFIXES": "SECRET_", "SECRET_A": "1", "PUBLIC_B": "2"}
    async with proxy_session(sdk_sse_server.url, *SSE, env=env) as session:
        assert json.loads(text_of(await session.call_tool("env_echo", {}))) == {"SECRET_A": "1"}
    async with proxy_session(sdk_sse_server.url, *SSE, env={"SECRET_A": "1"}) as session:
        assert json.loads(text_of(await session.call_tool("env_echo", {}))) is None


async def test_custom_headers_reach_the_server(sdk_sse_server: RunningServer, proxy_session: Any) -> None:
    env = {"ST_PROXY_HEADER_X_TENANT": "acme"}
    args = ("--header", "X-Test-Token: abc 123", "-H", "X-Second:two")
    async with proxy_session(sdk_sse_server.url, *SSE, *args, env=env) as session:
        headers = json.loads(text_of(await session.call_tool("whoami", {})))
    assert headers["x-test-token"] == "abc 123"
    assert headers["x-second"] == "two"
    assert headers["x-tenant"] == "acme"
    assert headers["user-agent"].startswith("mcp-sse-proxy")


# ---- long calls ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_seventy_five_second_call_completes_with_default_settings(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    # One step: no progress notification until the very end, so nothing resets any timer on the way.
    async with proxy_session(sdk_sse_server.url, *SSE, read_timeout=120) as session:
        began = time.monotonic()
        result = await session.call_tool("slow", {"seconds": 75, "steps": 1})
        assert text_of(result) == "slept 75"
        assert time.monotonic() - began >= 75
        assert text_of(await session.call_tool("echo", {"text": "still here"})) == "still here"


async def test_the_anyio_network_backend_still_relays(
    sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    """MCP_SSE_PROXY_ASYNCIO_NETWORK=0 (httpcore2's own backend, the opt-out): calls, concurrency, 1 MB."""
    env = {"MCP_SSE_PROXY_ASYNCIO_NETWORK": "0"}
    async with proxy_session(sdk_sse_server.url, *SSE, env=env) as session:
        results: dict[int, str] = {}

        async def call(index: int) -> None:
            results[index] = text_of(await session.call_tool("echo", {"text": f"call {index}"}))

        async with anyio.create_task_group() as tg:
            for index in range(8):
                tg.start_soon(call, index)
        assert results == {index: f"call {index}" for index in range(8)}
        assert text_of(await session.call_tool("big", {"size": 1_000_000})) == big_text(1_000_000)
