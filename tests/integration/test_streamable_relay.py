"""The proxy relaying a stdio client to the official SDK server over Streamable HTTP.

Every scenario runs against the three Streamable HTTP modes of `tests.servers.sdk_server`: stateful with SSE
answers ("streamable"), stateful with JSON answers ("streamable-json") and stateless ("stateless"). The client is
the SDK's stdio client driving `python -m mcp_sse_proxy`; a few checks drive the proxy byte by byte instead.
Where the SDK server itself cannot do something in a mode (JSON answers carry no notifications, a JSON or
stateless server has no back-channel for server requests), the test is skipped with that reason, and a separate
test checks that the server's own refusal reaches the client intact.

Figures (concurrency wall time, 10 MB timings) are printed with a `FIGURE` prefix (`pytest -s` shows them) and
recorded as junit properties.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError

from tests.integration.clients import elicitation_callback, list_roots_callback, sampling_callback
from tests.integration.conftest import RawProxy, RunningServer
from tests.servers.sdk_server import (
    STATIC_RESOURCE_TEXT,
    SUBSCRIBABLE_RESOURCE_URI,
    InMemoryEventStore,
    big_text,
    build_server,
)
from tests.servers.serving import bind_loopback
from tests.servers.serving import build_server as build_uvicorn_server

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(120)]

MODES = ("streamable", "streamable-json", "stateless")
MODE_FIXTURES = {
    "streamable": "sdk_streamable_server",
    "streamable-json": "sdk_streamable_json_server",
    "stateless": "sdk_stateless_server",
}
#: Modes whose SDK server can send notifications and requests on a request's own response stream.
STREAMS_NOTIFICATIONS = {"streamable", "stateless"}
#: Modes whose SDK server can ask the client (sampling, elicitation, roots): only a stateful SSE one.
HAS_BACK_CHANNEL = {"streamable"}
#: Modes with a session, hence a standalone GET stream for notifications not tied to a request.
HAS_SESSION = {"streamable", "streamable-json"}
TEN_MB = 10_000_000

INIT_PARAMS = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "raw-streamable-test", "version": "0"},
}


# ---- helpers shared with the other Streamable HTTP test modules ------------------------------------------------


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent), block
    return block.text


def rpc(method: str, request_id: int | str | None = None, **params: Any) -> dict[str, Any]:
    """A JSON-RPC request (or a notification when `request_id` is None)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params:
        message["params"] = params
    return message


async def raw_handshake(proxy: RawProxy, request_id: int | str = 0, timeout: float = 15.0) -> dict[str, Any]:
    """`initialize` + `notifications/initialized` through a raw proxy; returns the initialize result."""
    await proxy.send(rpc("initialize", request_id, **INIT_PARAMS))
    answer, skipped = await proxy.read_until(lambda m: m.get("id") == request_id, timeout)
    assert skipped == [], skipped
    assert "result" in answer, answer
    await proxy.send(rpc("notifications/initialized"))
    return dict(answer["result"])


async def read_nothing_for(proxy: RawProxy, seconds: float) -> list[Any]:
    """Every message the proxy writes within `seconds` (the caller usually expects none)."""
    seen: list[Any] = []
    with anyio.move_on_after(seconds):
        while True:
            seen.append(await proxy.read_message(timeout=seconds + 1))
    return seen


def figure(record_property: Callable[[str, object], None], name: str, value: str) -> None:
    """Report a measured figure: printed (visible with `pytest -s`) and kept in the junit report."""
    record_property(name, value)
    print(f"FIGURE {name}: {value}")


# ---- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=MODES)
def sdk_mode(request: pytest.FixtureRequest) -> tuple[str, RunningServer]:
    """`(mode, server)` for each Streamable HTTP mode of the SDK server (module-scoped servers)."""
    return request.param, request.getfixturevalue(MODE_FIXTURES[request.param])


# ---- the basics: handshake, tools, resources, prompts, ping ------------------------------------------------------


async def test_initialize_and_tools(sdk_mode: tuple[str, RunningServer], proxy_session: Any) -> None:
    mode, server = sdk_mode
    async with proxy_session(server.url) as session:
        init = session.initialize_result
        assert init is not None
        assert init.server_info.name == "sdk-test-server"
        assert init.protocol_version == "2025-11-25"
        assert init.instructions == "test server sdk-test-server"
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"echo", "add", "slow", "big", "size_of", "sample", "elicit", "list_roots", "log"} <= names
        assert text_of(await session.call_tool("echo", {"text": 'héllo ✓ "quoted"\nline'})) == (
            'héllo ✓ "quoted"\nline'
        )
        assert text_of(await session.call_tool("add", {"a": 2, "b": 3.5})) == "5.5"
        # A tool-level error is a result, relayed unchanged.
        failed = await session.call_tool("add", {"a": "x"})
        assert failed.is_error
        with pytest.raises(MCPError) as unknown:
            await session.send_request(
                types.Request[Any, Any](method="no/such_method", params=None), types.EmptyResult
            )
        assert unknown.value.error.code == -32601


async def test_resources_prompts_and_ping(sdk_mode: tuple[str, RunningServer], proxy_session: Any) -> None:
    mode, server = sdk_mode
    async with proxy_session(server.url) as session:
        resources = await session.list_resources()
        assert {str(r.uri) for r in resources.resources} >= {"test://static", SUBSCRIBABLE_RESOURCE_URI}
        templates = await session.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == ["test://item/{n}"]
        static = await session.read_resource("test://static")
        assert static.contents[0].text == STATIC_RESOURCE_TEXT  # type: ignore[union-attr]
        item = await session.read_resource("test://item/42")
        assert item.contents[0].text == "item 42"  # type: ignore[union-attr]
        prompts = await session.list_prompts()
        assert [p.name for p in prompts.prompts] == ["greet"]
        prompt = await session.get_prompt("greet", {"name": "Ada"})
        assert prompt.messages[0].content.text == "Hello, Ada!"  # type: ignore[union-attr]
        with anyio.fail_after(20):
            for _ in range(5):
                assert await session.send_ping() == types.EmptyResult()


async def test_resource_subscription_on_the_get_stream(
    sdk_mode: tuple[str, RunningServer], proxy_session: Any
) -> None:
    mode, server = sdk_mode
    if mode not in HAS_SESSION:
        pytest.skip("a stateless SDK server has no GET stream for notifications outside a request")
    updates: list[str] = []
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            changed.set()

    async with proxy_session(server.url, message_handler=on_message) as session:
        await session.subscribe_resource(SUBSCRIBABLE_RESOURCE_URI)
        assert text_of(await session.call_tool("touch", {})) == "notified"
        with anyio.fail_after(10):
            await changed.wait()
        assert updates == [SUBSCRIBABLE_RESOURCE_URI]
        await session.unsubscribe_resource(SUBSCRIBABLE_RESOURCE_URI)
        assert text_of(await session.call_tool("touch", {})) == "not subscribed"


# ---- progress, logging, cancellation ---------------------------------------------------------------------------


async def test_progress_streams_as_it_arrives(
    sdk_mode: tuple[str, RunningServer], proxy_session: Any
) -> None:
    mode, server = sdk_mode
    if mode not in STREAMS_NOTIFICATIONS:
        pytest.skip(
            "the SDK server answering with JSON drops progress notifications (no stream to carry them)"
        )
    arrivals: list[tuple[float, float]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        arrivals.append((time.monotonic(), value))

    async with proxy_session(server.url) as session:
        started = time.monotonic()
        result = await session.call_tool("slow", {"seconds": 2.0, "steps": 4}, progress_callback=on_progress)
        finished = time.monotonic()
    assert text_of(result) == "slept 2.0"
    assert [value for _, value in arrivals] == [1, 2, 3, 4]
    first = arrivals[0][0]
    # The first step ends 0.5 s in; relayed as it streams, it reaches the client long before the result
    # (a gap between two arrivals, whatever a loaded machine adds to the start).
    assert first > started
    assert finished - first > 1.0, f"first progress only {finished - first:.2f} s before the result"
    assert all(later[0] >= earlier[0] for earlier, later in zip(arrivals, arrivals[1:], strict=False))


async def test_logging(sdk_mode: tuple[str, RunningServer], proxy_session: Any) -> None:
    mode, server = sdk_mode
    if mode not in STREAMS_NOTIFICATIONS:
        pytest.skip("the SDK server answering with JSON drops log notifications tied to a request")
    logs: list[tuple[str, Any]] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append((params.level, params.data))

    async with proxy_session(server.url, logging_callback=on_log) as session:
        await session.set_logging_level("info")
        assert text_of(await session.call_tool("log", {"level": "warning", "message": "careful"})) == "logged"
        assert text_of(await session.call_tool("log", {"level": "error", "message": "broken"})) == "logged"
    # Notifications on a response stream come before its response, so both are in by now.
    assert logs == [("warning", "careful"), ("error", "broken")]


async def test_cancellation_sends_nothing_more_for_that_id(
    sdk_mode: tuple[str, RunningServer], raw_proxy: Any
) -> None:
    mode, server = sdk_mode
    async with raw_proxy(server.url) as proxy:
        await raw_handshake(proxy)
        call = rpc(
            "tools/call",
            2,
            name="slow",
            arguments={"seconds": 1.5, "steps": 15},
            _meta={"progressToken": "p"},
        )
        await proxy.send(call)
        if mode in STREAMS_NOTIFICATIONS:
            # The tool is running on the server. (Elsewhere the answer for id 2 must be dropped all the same.)
            await proxy.read_until(lambda m: m.get("method") == "notifications/progress")
        await proxy.send(rpc("notifications/cancelled", requestId=2, reason="changed my mind"))
        await proxy.send(rpc("ping", 3))
        pong, _ = await proxy.read_until(lambda m: m.get("id") == 3)
        assert pong == {"jsonrpc": "2.0", "id": 3, "result": {}}
        cancelled_at = time.monotonic()
        # The tool would have finished 1.5 s after it started; nothing for id 2 may come, then or later.
        # (Watching for silence longer than the tool runs is the assertion itself, not synchronisation.)
        later = await read_nothing_for(proxy, 2.0)
        assert [m for m in later if m.get("id") == 2] == []
        if mode in HAS_SESSION and mode in STREAMS_NOTIFICATIONS:
            # The cancel reached the server: its handler stopped, so its progress stopped too.
            assert [m for m in later if m.get("method") == "notifications/progress"] == []
        assert time.monotonic() - cancelled_at >= 2.0
        await proxy.send(rpc("tools/call", 4, name="echo", arguments={"text": "after"}))
        answer, _ = await proxy.read_until(lambda m: m.get("id") == 4)
        assert answer["result"]["content"][0]["text"] == "after"


async def test_cancelled_calls_free_their_slots(
    sdk_mode: tuple[str, RunningServer], proxy_session: Any
) -> None:
    """Cancelled calls must not hold upstream connections: with 2 slots, 3 cancelled 30 s calls, then a call."""
    _mode, server = sdk_mode
    async with proxy_session(server.url, "--max-concurrency", "2") as session:
        with anyio.move_on_after(1.0):
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(session.call_tool, "slow", {"seconds": 30, "steps": 1})
        # Leaving the scope cancelled the three calls: the SDK client sent notifications/cancelled for each.
        with anyio.fail_after(10):
            assert text_of(await session.call_tool("echo", {"text": "still here"})) == "still here"


async def test_timed_out_calls_free_their_slots(sdk_mode: tuple[str, RunningServer], raw_proxy: Any) -> None:
    """A call the proxy times out (`--request-timeout`) is answered, cancelled upstream, and lets go of its slot."""
    _mode, server = sdk_mode
    async with raw_proxy(server.url, "--max-concurrency", "1", "--request-timeout", "1") as proxy:
        await raw_handshake(proxy)
        await proxy.send(rpc("tools/call", 1, name="slow", arguments={"seconds": 20, "steps": 1}))
        answer = await proxy.read_message(timeout=5)
        assert answer["id"] == 1 and "error" in answer
        await proxy.send(rpc("tools/call", 2, name="echo", arguments={"text": "next"}))
        answer = await proxy.read_message(timeout=5)
        assert answer["id"] == 2 and answer["result"]["content"][0]["text"] == "next"


# ---- server requests on the POST stream ------------------------------------------------------------------------


async def test_sampling_elicitation_and_roots(
    sdk_mode: tuple[str, RunningServer], proxy_session: Any
) -> None:
    mode, server = sdk_mode
    if mode not in HAS_BACK_CHANNEL:
        pytest.skip(f"the SDK server in {mode} mode has no back-channel for server requests")
    async with proxy_session(
        server.url,
        sampling_callback=sampling_callback,
        elicitation_callback=elicitation_callback,
        list_roots_callback=list_roots_callback,
    ) as session:
        assert text_of(await session.call_tool("sample", {"prompt": "hi"})) == "sampled:hi"
        elicited = json.loads(text_of(await session.call_tool("elicit", {"message": "ok?"})))
        assert elicited == {"action": "accept", "content": {"answer": "yes"}}
        assert json.loads(text_of(await session.call_tool("list_roots", {}))) == ["file:///workspace"]
        # Several at once: each server request is answered on the right stream.
        results: dict[str, str] = {}

        async def sample(prompt: str) -> None:
            results[prompt] = text_of(await session.call_tool("sample", {"prompt": prompt}))

        async with anyio.create_task_group() as group:
            for index in range(5):
                group.start_soon(sample, f"p{index}")
        assert results == {f"p{index}": f"sampled:p{index}" for index in range(5)}


async def test_server_refusal_without_back_channel_is_relayed(
    sdk_mode: tuple[str, RunningServer], proxy_session: Any
) -> None:
    mode, server = sdk_mode
    if mode in HAS_BACK_CHANNEL:
        pytest.skip("this server has a back-channel")
    async with proxy_session(server.url, sampling_callback=sampling_callback) as session:
        with anyio.fail_after(10), pytest.raises(MCPError, match="back-channel"):
            await session.call_tool("sample", {"prompt": "hi"})
        assert text_of(await session.call_tool("echo", {"text": "ok"})) == "ok"


# ---- load: concurrency and large payloads ----------------------------------------------------------------------


async def test_fifty_concurrent_calls_overlap(
    sdk_mode: tuple[str, RunningServer], proxy_session: Any, record_property: Any
) -> None:
    mode, server = sdk_mode
    results: dict[int, str] = {}

    async with proxy_session(server.url, read_timeout=60) as session:

        async def call(index: int) -> None:
            result = await session.call_tool("slow", {"seconds": 2.0, "steps": 2})
            results[index] = text_of(result)
            # Interleave quick calls: a slow neighbour must not hold them up.
            assert text_of(await session.call_tool("echo", {"text": str(index)})) == str(index)

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for index in range(50):
                group.start_soon(call, index)
        wall = time.monotonic() - started
    assert results == dict.fromkeys(range(50), "slept 2.0")
    figure(record_property, f"concurrency_50x2s_{mode}", f"{wall:.2f} s")
    # One after another would take 100 s; overlapping, a little over one call (a figure, recorded above). The
    # bound only tells the two apart, with room for a loaded machine.
    assert wall < 40, f"50 overlapping 2 s calls took {wall:.1f} s"


async def test_ten_megabyte_result(
    sdk_mode: tuple[str, RunningServer], proxy_session: Any, record_property: Any
) -> None:
    mode, server = sdk_mode
    async with proxy_session(server.url, read_timeout=60) as session:
        started = time.monotonic()
        result = await session.call_tool("big", {"size": TEN_MB})
        elapsed = time.monotonic() - started
        text = text_of(result)
        assert len(text) == TEN_MB
        assert text == big_text(TEN_MB)
        # The session is still usable after a huge message.
        assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"
    figure(record_property, f"result_10MB_{mode}", f"{elapsed:.2f} s")


async def test_ten_megabyte_request(
    sdk_mode: tuple[str, RunningServer], proxy_session: Any, record_property: Any
) -> None:
    mode, server = sdk_mode
    async with proxy_session(server.url, read_timeout=60) as session:
        started = time.monotonic()
        result = await session.call_tool("size_of", {"data": "é" + "x" * (TEN_MB - 1)})
        elapsed = time.monotonic() - started
        assert text_of(result) == str(TEN_MB)
    figure(record_property, f"request_10MB_{mode}", f"{elapsed:.2f} s")


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_75_second_call_completes_with_default_settings(
    sdk_streamable_server: RunningServer, proxy_session: Any
) -> None:
    """Silent for 75 s (one progress step at the very end): longer than the 60 s read timeout default."""
    async with proxy_session(sdk_streamable_server.url, read_timeout=150) as session:
        started = time.monotonic()
        result = await session.call_tool("slow", {"seconds": 75, "steps": 1})
        elapsed = time.monotonic() - started
        assert text_of(result) == "slept 75"
        assert elapsed >= 75  # answered by the server, not by a timeout; the read timeout bounds the rest
        assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"


# ---- resumability: event store, polling ------------------------------------------------------------------------


async def test_long_calls_with_an_event_store(start_sdk_server: Any, proxy_session: Any) -> None:
    server = start_sdk_server("streamable", "--event-store", "--retry-interval", "200")
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with proxy_session(server.url, sampling_callback=sampling_callback) as session:
        result = await session.call_tool("slow", {"seconds": 3.0, "steps": 6}, progress_callback=on_progress)
        assert text_of(result) == "slept 3.0"
        assert progress == [1, 2, 3, 4, 5, 6]
        assert text_of(await session.call_tool("sample", {"prompt": "stored"})) == "sampled:stored"
        results = []

        async def call() -> None:
            results.append(text_of(await session.call_tool("slow", {"seconds": 1.0, "steps": 2})))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(call)
        assert results == ["slept 1.0"] * 10


async def test_cancelled_calls_free_their_slots_with_an_event_store(
    start_sdk_server: Any, proxy_session: Any
) -> None:
    """With resumability on, a cancelled call's stream has an id to resume from: it must not be resumed forever."""
    server = start_sdk_server("streamable", "--event-store", "--retry-interval", "200")
    async with proxy_session(server.url, "--max-concurrency", "2") as session:
        with anyio.move_on_after(1.0):
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(session.call_tool, "slow", {"seconds": 30, "steps": 1})
        with anyio.fail_after(10):
            assert text_of(await session.call_tool("echo", {"text": "still here"})) == "still here"


@asynccontextmanager
async def polling_sdk_server(retry_ms: int) -> AsyncIterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """The SDK server, in this process, with an event store, a `retry` hint and a tool that closes its stream.

    `tests.servers.sdk_server` has no tool that calls `close_sse_stream()`, so its `--retry-interval` alone
    never closes a stream early. `poll_slow` does, at each of its first `closes` steps (2025-11-25 polling).
    Yields the MCP endpoint URL and a live list of the (HTTP method, lowercase headers) it received.
    """
    mcp = build_server("polling-sdk-server")

    @mcp.tool(name="poll_slow", structured_output=False)
    async def poll_slow(ctx: Context, seconds: float = 1.0, steps: int = 4, closes: int = 1) -> str:
        # The SDK writes the priming event (the id to resume from) as the stream starts; a close racing
        # ahead of it would leave nothing to resume from, which a polling server must not do. (The SDK
        # offers no hook for "priming written": this pause is part of the server's behaviour, not the test's.)
        await anyio.sleep(0.2)
        for step in range(1, steps + 1):
            if step <= closes:
                await ctx.close_sse_stream()
            await anyio.sleep(seconds / steps)
            await ctx.report_progress(step, steps, f"step {step}/{steps}")
        return f"polled {seconds}"

    inner = mcp.streamable_http_app(event_store=InMemoryEventStore(), retry_interval=retry_ms)
    seen: list[tuple[str, dict[str, str]]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append((scope["method"], {k.decode().lower(): v.decode() for k, v in scope["headers"]}))
        await inner(scope, receive, send)

    sock = bind_loopback(0)
    port = sock.getsockname()[1]
    ready = anyio.Event()
    server = build_uvicorn_server(app, ready.set)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: server.serve(sockets=[sock]))
            with anyio.fail_after(10):
                await ready.wait()
            try:
                yield f"http://127.0.0.1:{port}/mcp", seen
            finally:
                server.should_exit = True
    finally:
        sock.close()


async def test_long_calls_survive_early_closes_with_retry(proxy_session: Any) -> None:
    """2025-11-25 polling: the server closes the call's stream 3 times; the proxy waits `retry`, then resumes."""
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with polling_sdk_server(retry_ms=400) as (url, seen), proxy_session(url) as session:
        started = time.monotonic()
        result = await session.call_tool(
            "poll_slow", {"seconds": 2.0, "steps": 4, "closes": 3}, progress_callback=on_progress
        )
        elapsed = time.monotonic() - started
        assert text_of(result) == "polled 2.0"
        # Every step exactly once: replayed events after Last-Event-ID are never delivered twice.
        assert progress == [1, 2, 3, 4]
        # 2 s of work and three 0.4 s waits: a bound for a stuck resume, not a timing (that is a benchmark's).
        assert elapsed < 20, f"the polled call took {elapsed:.1f} s"
        resumes = [headers for method, headers in seen if method == "GET" and "last-event-id" in headers]
        assert len(resumes) >= 3
        assert all(headers.get("mcp-session-id") for headers in resumes)
        # Ten polled calls at once, each resumed on its own.
        results: list[str] = []

        async def call() -> None:
            results.append(
                text_of(await session.call_tool("poll_slow", {"seconds": 1.0, "steps": 2, "closes": 1}))
            )

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(call)
        assert results == ["polled 1.0"] * 10


async def test_keepalive_pings_are_answered_and_never_shown(
    sdk_mode: tuple[str, RunningServer], raw_proxy: Any
) -> None:
    mode, server = sdk_mode
    async with raw_proxy(server.url, "--ping-interval", "1", "--log-level", "debug") as proxy:
        await raw_handshake(proxy)
        assert await read_nothing_for(proxy, 3.5) == []
        assert proxy.stderr_text().count("keepalive ping answered") >= 2
        await proxy.send(rpc("tools/call", 1, name="echo", arguments={"text": "awake"}))
        answer = await proxy.read_message()
        assert answer["result"]["content"][0]["text"] == "awake"


async def test_the_anyio_network_backend_still_relays(
    sdk_streamable_server: RunningServer, proxy_session: Any
) -> None:
    """MCP_SSE_PROXY_ASYNCIO_NETWORK=0 (httpcore2's own backend, the opt-out): calls, concurrency, 1 MB."""
    env = {"MCP_SSE_PROXY_ASYNCIO_NETWORK": "0"}
    async with proxy_session(sdk_streamable_server.url, env=env) as session:
        results: dict[int, str] = {}

        async def call(index: int) -> None:
            results[index] = text_of(await session.call_tool("echo", {"text": f"call {index}"}))

        async with anyio.create_task_group() as tg:
            for index in range(8):
                tg.start_soon(call, index)
        assert results == {index: f"call {index}" for index in range(8)}
        assert text_of(await session.call_tool("big", {"size": 1_000_000})) == big_text(1_000_000)
