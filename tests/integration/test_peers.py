"""Self-tests of the test peers: the SDK server and the fault server, talked to directly (no proxy).

The SDK server is driven with the SDK's own HTTP clients; each fault switch is checked with raw httpx2 requests
(and, where it matters, with the SDK client the proxy's behaviour will be compared against).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.integration.clients import elicitation_callback, list_roots_callback, sampling_callback
from tests.integration.conftest import FaultControl, RunningServer
from tests.servers.sdk_server import LONG_TOOL_NAME, STATIC_RESOURCE_TEXT, big_text

# Every wait below is bounded by anyio or httpx2 timeouts; the thread timeout is only a last-resort net.
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60, method="thread")]

INIT_PARAMS = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "raw-test", "version": "0"},
}
STREAM_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


# ---- helpers -------------------------------------------------------------------------------------------------


@asynccontextmanager
async def sdk_client(
    transport: str,
    url: str,
    headers: dict[str, str] | None = None,
    deadline: float = 30.0,
    **session_kwargs: Any,
) -> AsyncIterator[ClientSession]:
    """The SDK's own HTTP client for `transport`, as an initialized handshake-era session."""
    if transport == "sse":
        streams = sse_client(url, headers=headers)
        http_client = None
    else:
        http_client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10.0, read=30.0))
        streams = streamable_http_client(url, http_client=http_client, max_sse_event_size=None)
    try:
        # One deadline for the whole use: the SDK's SSE client waits for the endpoint event without a timeout.
        with anyio.fail_after(deadline):
            async with streams as (read_stream, write_stream):
                async with ClientSession(
                    read_stream, write_stream, read_timeout_seconds=20, **session_kwargs
                ) as s:
                    await s.initialize()
                    yield s
    finally:
        if http_client is not None:
            await http_client.aclose()


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def rpc(method: str, request_id: int | str | None = 1, **params: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params:
        message["params"] = params
    return message


async def collect_events(response: httpx2.Response, limit: int = 100) -> list[httpx2.ServerSentEvent]:
    events: list[httpx2.ServerSentEvent] = []
    async for event in httpx2.EventSource(response):
        events.append(event)
        if len(events) >= limit:
            break
    return events


async def raw_initialize(client: httpx2.AsyncClient, url: str) -> str:
    """Initialize a Streamable session with raw requests; returns its session id."""
    response = await client.post(url, json=rpc("initialize", 0, **INIT_PARAMS), headers=STREAM_HEADERS)
    assert response.status_code == 200, response.text
    session_id = response.headers["mcp-session-id"]
    headers = {**STREAM_HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}
    initialized = await client.post(url, json=rpc("notifications/initialized", None), headers=headers)
    assert initialized.status_code == 202
    return session_id


def session_headers(session_id: str) -> dict[str, str]:
    return {**STREAM_HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25"}


@asynccontextmanager
async def legacy_stream(
    client: httpx2.AsyncClient, url: str
) -> AsyncIterator[tuple[AsyncIterator[str], str]]:
    """Open a legacy SSE stream; yields its line iterator (read past the endpoint event) and the endpoint data."""
    async with client.stream("GET", url, headers={"accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        lines = response.aiter_lines()
        endpoint = None
        async for line in lines:
            if line.startswith("data:"):
                endpoint = line[5:].strip()
            elif line == "" and endpoint is not None:
                break
        assert endpoint is not None
        yield lines, endpoint


async def next_message(lines: AsyncIterator[str]) -> dict[str, Any]:
    """The next `message` event's JSON from an SSE line iterator (multi-line data joined)."""
    data: list[str] = []
    async for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line == "" and data:
            return dict(json.loads("\n".join(data)))
    raise AssertionError("stream ended before a message event")


# ---- the SDK server ------------------------------------------------------------------------------------------


async def test_sdk_server_basics_on_every_transport(sdk_server: tuple[str, RunningServer]) -> None:
    transport, server = sdk_server
    async with sdk_client(transport, server.url) as session:
        assert session.initialize_result is not None
        assert session.initialize_result.server_info.name == "sdk-test-server"
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"echo", "add", "slow", "big", "size_of", "sample", "elicit", "list_roots", "log"} <= names
        assert {"whoami", "env_echo", LONG_TOOL_NAME} <= names
        assert text_of(await session.call_tool("echo", {"text": "héllo"})) == "héllo"
        assert text_of(await session.call_tool("add", {"a": 2, "b": 3})) == "5"
        env = {"A": "1", "B": "two"}
        assert json.loads(text_of(await session.call_tool("env_echo", {"env": env}))) == env
        assert json.loads(text_of(await session.call_tool("env_echo", {}))) is None
        static = await session.read_resource("test://static")
        assert static.contents[0].text == STATIC_RESOURCE_TEXT  # type: ignore[union-attr]
        item = await session.read_resource("test://item/7")
        assert item.contents[0].text == "item 7"  # type: ignore[union-attr]
        prompt = await session.get_prompt("greet", {"name": "Ada"})
        assert prompt.messages[0].content.text == "Hello, Ada!"  # type: ignore[union-attr]


async def test_sdk_server_big_result_and_progress(sdk_server: tuple[str, RunningServer]) -> None:
    transport, server = sdk_server
    async with sdk_client(transport, server.url) as session:
        result = await session.call_tool("big", {"size": 1_000_000})
        assert text_of(result) == big_text(1_000_000)
        progress: list[tuple[float, float | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total))

        slow = await session.call_tool("slow", {"seconds": 0.2, "steps": 3}, progress_callback=on_progress)
        assert text_of(slow) == "slept 0.2"
        # A JSON answer cannot carry notifications; every SSE answer carries the progress.
        assert progress == ([] if transport == "streamable-json" else [(1, 3), (2, 3), (3, 3)])


@pytest.mark.parametrize("transport", ["sse", "streamable"])
async def test_sdk_server_asks_the_client(transport: str, start_sdk_server: Any) -> None:
    server = start_sdk_server(transport)
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with sdk_client(
        transport,
        server.url,
        sampling_callback=sampling_callback,
        elicitation_callback=elicitation_callback,
        list_roots_callback=list_roots_callback,
        logging_callback=on_log,
    ) as session:
        assert text_of(await session.call_tool("sample", {"prompt": "hi"})) == "sampled:hi"
        elicited = json.loads(text_of(await session.call_tool("elicit", {"message": "ok?"})))
        assert elicited == {"action": "accept", "content": {"answer": "yes"}}
        assert json.loads(text_of(await session.call_tool("list_roots", {}))) == ["file:///workspace"]
        assert text_of(await session.call_tool("log", {"level": "warning", "message": "careful"})) == "logged"
        assert [(entry.level, entry.data) for entry in logs] == [("warning", "careful")]


async def test_sdk_server_without_back_channel_refuses_sampling(
    sdk_streamable_json_server: RunningServer,
) -> None:
    async with sdk_client(
        "streamable-json", sdk_streamable_json_server.url, sampling_callback=sampling_callback
    ) as s:
        with pytest.raises(MCPError, match="back-channel"):
            await s.call_tool("sample", {"prompt": "hi"})


@pytest.mark.parametrize("transport", ["sse", "streamable"])
async def test_sdk_server_accepts_a_10_mb_request(transport: str, start_sdk_server: Any) -> None:
    server = start_sdk_server(transport)
    async with sdk_client(transport, server.url) as session:
        result = await session.call_tool("size_of", {"data": "x" * 10_000_000})
        assert text_of(result) == "10000000"


async def test_sdk_server_sees_request_headers(sdk_streamable_server: RunningServer) -> None:
    async with sdk_client(
        "streamable", sdk_streamable_server.url, headers={"X-Test-Token": "abc"}
    ) as session:
        headers = json.loads(text_of(await session.call_tool("whoami", {})))
        assert headers["x-test-token"] == "abc"
        assert headers["mcp-protocol-version"] == "2025-11-25"


async def test_sdk_server_options(start_sdk_server: Any) -> None:
    server = start_sdk_server("streamable", "--tool-prefix", "p_", "--extra-tools", "2", "--name", "second")
    async with sdk_client("streamable", server.url) as session:
        assert session.initialize_result is not None
        assert session.initialize_result.server_info.name == "second"
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"p_echo", "p_extra_0", "p_extra_1", f"p_{LONG_TOOL_NAME}"} <= names
        assert "echo" not in names


async def test_sdk_server_subscribe_and_log_level(sdk_streamable_server: RunningServer) -> None:
    updates: list[Any] = []
    updated = anyio.Event()

    async def on_message(message: Any) -> None:
        updates.append(message)
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.set()

    async with sdk_client("streamable", sdk_streamable_server.url, message_handler=on_message) as session:
        assert session.server_capabilities is not None and session.server_capabilities.resources is not None
        assert session.server_capabilities.resources.subscribe
        await session.send_request(
            types.SubscribeRequest(params=types.SubscribeRequestParams(uri="test://counter")),
            types.EmptyResult,
        )
        await session.send_request(
            types.SetLevelRequest(params=types.SetLevelRequestParams(level="error")), types.EmptyResult
        )
        assert text_of(await session.call_tool("touch", {})) == "notified"
        with anyio.fail_after(5):
            await updated.wait()


async def test_sdk_server_speaks_2026_when_probed(sdk_streamable_server: RunningServer) -> None:
    async with streamable_http_client(sdk_streamable_server.url) as (read_stream, write_stream):
        async with ClientSession(read_stream, write_stream, sampling_callback=sampling_callback) as session:
            with anyio.fail_after(10):
                discovered = await session.discover()
            assert "2026-07-28" in discovered.supported_versions
            assert session.protocol_version == "2026-07-28"
            assert text_of(await session.call_tool("echo", {"text": "modern"})) == "modern"
            first = await session.call_tool("sample", {"prompt": "q"}, allow_input_required=True)
            assert isinstance(first, types.InputRequiredResult)
            assert first.input_requests is not None and set(first.input_requests) == {"sample"}
            answer = types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text="a"), model="m"
            )
            second = await session.call_tool("sample", {"prompt": "q"}, input_responses={"sample": answer})
            assert text_of(second) == "a"


async def test_sdk_server_event_store_replays_after_last_event_id(start_sdk_server: Any) -> None:
    server = start_sdk_server("streamable", "--event-store", "--retry-interval", "100")
    async with httpx2.AsyncClient(timeout=10) as client:
        session_id = await raw_initialize(client, server.url)
        call = rpc(
            "tools/call", 5, name="slow", arguments={"seconds": 0.4, "steps": 4}, _meta={"progressToken": "t"}
        )
        seen: list[httpx2.ServerSentEvent] = []
        async with client.stream(
            "POST", server.url, json=call, headers=session_headers(session_id)
        ) as response:
            async for event in httpx2.EventSource(response):
                seen.append(event)
                if event.data:
                    break  # leave after the first real message
        last_id = seen[-1].id
        assert last_id
        headers = {**session_headers(session_id), "last-event-id": last_id}
        messages: list[dict[str, Any]] = []
        async with client.stream("GET", server.url, headers=headers) as response:
            # The SDK keeps the replay stream open after the response: read up to the response.
            async for event in httpx2.EventSource(response):
                if event.data:
                    messages.append(json.loads(event.data))
                    if messages[-1].get("id") == 5:
                        break
        # Only the rest of that stream: later progress, then the response; nothing seen before.
        assert messages[-1]["id"] == 5
        progress = [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]
        first_progress = json.loads(seen[-1].data)["params"]["progress"]
        assert progress == [p for p in (1, 2, 3, 4) if p > first_progress]


# ---- the fault server: MCP behaviour --------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["sse", "streamable"])
async def test_fault_server_serves_the_sdk_client(transport: str, fault_server: FaultControl) -> None:
    url = fault_server.sse_url if transport == "sse" else fault_server.mcp_url
    async with sdk_client(transport, url, sampling_callback=sampling_callback) as session:
        assert session.initialize_result is not None
        assert session.initialize_result.server_info.name == "fault-server"
        assert {t.name for t in (await session.list_tools()).tools} == {"echo", "slow", "log", "sample"}
        assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"
        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        await session.call_tool("slow", {"seconds": 0.1, "steps": 2}, progress_callback=on_progress)
        assert progress == [1, 2]
        assert text_of(await session.call_tool("sample", {"prompt": "p"})) == "sampled:p"
        await session.send_ping()
    posted = [
        entry["body"]["method"] for entry in await fault_server.rpc_requests() if "method" in entry["body"]
    ]
    assert posted[:2] == ["initialize", "notifications/initialized"]
    # The client's answer to the server's sampling request was POSTed back and logged.
    answers = [e["body"] for e in await fault_server.rpc_requests() if "result" in e["body"]]
    assert answers and answers[0]["result"]["content"]["text"] == "sampled:p"
    if transport == "streamable":
        deleted = await fault_server.wait_for_request(lambda e: e["method"] == "DELETE")
        assert deleted["headers"]["mcp-session-id"]
        assert all(
            e["headers"].get("mcp-protocol-version") == "2025-11-25"
            for e in (await fault_server.requests())[1:]
        )


async def test_fault_server_json_response_and_pretty_json(fault_server: FaultControl) -> None:
    await fault_server.configure(json_response=True, json_pretty=True)
    async with httpx2.AsyncClient(timeout=10) as client:
        response = await client.post(
            fault_server.mcp_url, json=rpc("initialize", 1, **INIT_PARAMS), headers=STREAM_HEADERS
        )
        assert response.headers["content-type"] == "application/json"
        assert "\n" in response.text
        assert response.json()["result"]["serverInfo"]["name"] == "fault-server"
    async with sdk_client("streamable", fault_server.mcp_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "j"})) == "j"


async def test_fault_server_log_and_state(fault_server: FaultControl) -> None:
    async with sdk_client("sse", fault_server.sse_url) as session:
        await session.send_request(
            types.SetLevelRequest(params=types.SetLevelRequestParams(level="warning")), types.EmptyResult
        )
        await session.send_request(
            types.SubscribeRequest(params=types.SubscribeRequestParams(uri="test://x")), types.EmptyResult
        )
        state = await fault_server.state()
        assert state["sessions"][0]["log_level"] == "warning"
        assert state["sessions"][0]["subscriptions"] == ["test://x"]
    entries = await fault_server.requests()
    assert entries[0]["method"] == "GET" and entries[0]["path"] == "/sse"
    initialize = entries[1]
    assert initialize["body"]["method"] == "initialize" and initialize["status"] == 202
    assert initialize["query"].startswith("sessionId=")
    assert initialize["headers"]["content-type"] == "application/json"


async def test_fault_server_cancellation_stops_the_response(fault_server: FaultControl) -> None:
    async with (
        httpx2.AsyncClient(timeout=10) as client,
        legacy_stream(client, fault_server.sse_url) as (lines, path),
    ):
        post = fault_server.base_url + path
        await client.post(post, json=rpc("initialize", 1, **INIT_PARAMS))
        assert (await next_message(lines))["id"] == 1
        await client.post(post, json=rpc("tools/call", 2, name="slow", arguments={"seconds": 1, "steps": 1}))
        await client.post(post, json=rpc("notifications/cancelled", None, requestId=2))
        await client.post(post, json=rpc("ping", 3))
        assert (await next_message(lines))["id"] == 3
        with anyio.move_on_after(1.3):
            unexpected = await next_message(lines)
            raise AssertionError(f"cancelled request still answered: {unexpected}")
    state = await fault_server.wait_for_state(
        lambda state: not state["sessions"]
    )  # the stream was the session
    assert state["sessions"] == []


# ---- the fault server: SSE formatting switches ----------------------------------------------------------------


@pytest.mark.parametrize("ending", ["crlf", "cr"])
async def test_fault_line_endings(ending: str, fault_server: FaultControl) -> None:
    # httpx2's SSE parser holds back a line ending in a lone CR until the next byte arrives (it might be a
    # CRLF), so a CR-terminated event is only dispatched when more data follows: keepalives provide it.
    await fault_server.configure(sse_line_ending=ending, sse_keepalive_ms=50 if ending == "cr" else None)
    async with httpx2.AsyncClient(timeout=10) as client:
        async with client.stream("GET", fault_server.sse_url) as response:
            raw = b""
            async for chunk in response.aiter_raw():
                raw += chunk
                if raw.endswith((b"\r\n\r\n", b"\r\r")):
                    break
    assert raw.startswith(b"event: endpoint\r\n" if ending == "crlf" else b"event: endpoint\rdata: ")
    if ending == "cr":
        assert b"\n" not in raw
    async with sdk_client("sse", fault_server.sse_url) as session:
        assert text_of(await session.call_tool("echo", {"text": ending})) == ending


async def test_fault_tiny_chunks(fault_server: FaultControl) -> None:
    await fault_server.configure(sse_chunk_size=3, sse_chunk_delay=0.002)
    async with httpx2.AsyncClient(timeout=10) as client:
        async with client.stream("GET", fault_server.sse_url) as response:
            chunks: list[bytes] = []
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                if b"\n\n" in b"".join(chunks):
                    break
    assert len(chunks) >= 5 and max(len(chunk) for chunk in chunks) < 20
    async with sdk_client("sse", fault_server.sse_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "chunky"})) == "chunky"


async def test_fault_multiline_data_comments_and_retry(fault_server: FaultControl) -> None:
    await fault_server.configure(sse_multiline_data=True, sse_comments=True, sse_retry_ms=1500)
    async with (
        httpx2.AsyncClient(timeout=10) as client,
        legacy_stream(client, fault_server.sse_url) as (lines, path),
    ):
        await client.post(fault_server.base_url + path, json=rpc("ping", 9))
        event: list[str] = []
        async for line in lines:
            if line == "" and any(entry.startswith("data:") for entry in event):
                break
            event.append(line)
    assert event[0] == ": fault-server comment"
    assert "retry: 1500" in event and ":" in event
    data = [line[6:] for line in event if line.startswith("data: ")]
    assert len(data) > 1
    assert json.loads("\n".join(data)) == {"jsonrpc": "2.0", "id": 9, "result": {}}
    async with sdk_client("sse", fault_server.sse_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "multi\nline"})) == "multi\nline"


async def test_fault_invalid_json_event(fault_server: FaultControl) -> None:
    await fault_server.configure(invalid_json={"count": 1})
    async with (
        httpx2.AsyncClient(timeout=10) as client,
        legacy_stream(client, fault_server.sse_url) as (lines, path),
    ):
        await client.post(fault_server.base_url + path, json=rpc("ping", 4))
        with pytest.raises(json.JSONDecodeError):
            await next_message(lines)
        assert await next_message(lines) == {"jsonrpc": "2.0", "id": 4, "result": {}}
    assert (await fault_server.configure())["invalid_json"] is None


# ---- the fault server: legacy endpoint event ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected_prefix"),
    [
        ("path", "/messages/?sessionId="),
        ("relative", "messages/?sessionId="),
        ("path_query", "/messages/?sessionId="),
        ("absolute", "http://127.0.0.1:"),
        ("cross_origin", "http://localhost:"),
    ],
)
async def test_fault_endpoint_modes(mode: str, expected_prefix: str, fault_server: FaultControl) -> None:
    await fault_server.configure(endpoint=mode)
    async with (
        httpx2.AsyncClient(timeout=10) as client,
        legacy_stream(client, fault_server.sse_url) as (_, endpoint),
    ):
        assert endpoint.startswith(expected_prefix)
        if mode == "path_query":
            assert "&tenant=a%20b&x=1" in endpoint
    if mode == "cross_origin":
        # Same server, other origin: a POST logged here would mean the client followed it. (The SDK's own
        # sse_client hangs on such an endpoint instead of failing, so it is not driven here.)
        assert endpoint.split("/messages/")[0].rsplit(":", 1)[1] == str(fault_server.server.port)
        assert await fault_server.rpc_requests() == []
    else:
        async with sdk_client("sse", fault_server.sse_url) as session:
            assert text_of(await session.call_tool("echo", {"text": mode})) == mode


# ---- the fault server: HTTP errors and delays -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "header", "value"),
    [
        (500, None, None),
        (404, None, None),
        (429, "retry-after", "1"),
        (401, "www-authenticate", 'Bearer realm="fault-server"'),
    ],
)
async def test_fault_http_error(
    status: int, header: str | None, value: str | None, fault_server: FaultControl
) -> None:
    await fault_server.configure(http_error={"status": status, "rpc_method": "tools/list"})
    async with httpx2.AsyncClient(timeout=10) as client:
        session_id = await raw_initialize(client, fault_server.mcp_url)
        failed = await client.post(
            fault_server.mcp_url, json=rpc("tools/list", 2), headers=session_headers(session_id)
        )
        assert failed.status_code == status
        if header is not None:
            assert failed.headers[header] == value
        retried = await client.post(
            fault_server.mcp_url, json=rpc("tools/list", 3), headers=session_headers(session_id)
        )
        assert retried.status_code == 200
    logged = await fault_server.rpc_requests("tools/list")
    assert [entry["status"] for entry in logged] == [status, 200]


async def test_fault_http_error_repeats_and_filters_by_http_method(fault_server: FaultControl) -> None:
    await fault_server.configure(
        http_error={"status": 401, "http_method": "GET", "count": -1, "www_authenticate": 'Bearer scope="x"'}
    )
    async with httpx2.AsyncClient(timeout=10) as client:
        for _ in range(2):
            response = await client.get(fault_server.sse_url)
            assert response.status_code == 401 and response.headers["www-authenticate"] == 'Bearer scope="x"'
        posted = await client.post(
            fault_server.mcp_url, json=rpc("initialize", 1, **INIT_PARAMS), headers=STREAM_HEADERS
        )
        assert posted.status_code == 200


async def test_fault_post_delay(fault_server: FaultControl) -> None:
    await fault_server.configure(post_delay={"seconds": 0.5, "rpc_method": "ping"})
    async with httpx2.AsyncClient(timeout=10) as client:
        session_id = await raw_initialize(client, fault_server.mcp_url)
        started = time.monotonic()
        response = await client.post(
            fault_server.mcp_url, json=rpc("ping", 2), headers=session_headers(session_id)
        )
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.45


# ---- the fault server: sessions, restart, GET and DELETE ------------------------------------------------------


async def test_fault_streamable_restart_expires_the_session(fault_server: FaultControl) -> None:
    async with httpx2.AsyncClient(timeout=10) as client:
        session_id = await raw_initialize(client, fault_server.mcp_url)
        ok = await client.post(fault_server.mcp_url, json=rpc("ping", 2), headers=session_headers(session_id))
        assert ok.status_code == 200
        await fault_server.restart()
        gone = await client.post(
            fault_server.mcp_url, json=rpc("ping", 3), headers=session_headers(session_id)
        )
        assert gone.status_code == 404
        missing = await client.post(fault_server.mcp_url, json=rpc("ping", 4), headers=STREAM_HEADERS)
        assert missing.status_code == 400
        assert await raw_initialize(client, fault_server.mcp_url) != session_id


async def test_fault_legacy_restart_ends_the_stream_and_needs_initialize(fault_server: FaultControl) -> None:
    async with httpx2.AsyncClient(timeout=10) as client:
        async with legacy_stream(client, fault_server.sse_url) as (lines, path):
            await client.post(fault_server.base_url + path, json=rpc("initialize", 1, **INIT_PARAMS))
            assert (await next_message(lines))["id"] == 1
            await fault_server.restart()
            with anyio.fail_after(3):
                rest = [line async for line in lines]
            assert rest == []
        assert (await client.post(fault_server.base_url + path, json=rpc("ping", 2))).status_code == 404
        async with legacy_stream(client, fault_server.sse_url) as (lines, new_path):
            assert new_path != path
            await client.post(fault_server.base_url + new_path, json=rpc("tools/list", 3))
            refused = await next_message(lines)
            assert refused["id"] == 3 and refused["error"]["code"] == -32600


async def test_fault_get_stream_405_and_delete_405(fault_server: FaultControl) -> None:
    await fault_server.configure(get_stream=False, delete_allowed=False)
    async with httpx2.AsyncClient(timeout=10) as client:
        session_id = await raw_initialize(client, fault_server.mcp_url)
        headers = session_headers(session_id)
        assert (await client.get(fault_server.mcp_url, headers=headers)).status_code == 405
        assert (await client.delete(fault_server.mcp_url, headers=headers)).status_code == 405
        await fault_server.configure(get_stream=True, delete_allowed=True)
        assert (await client.delete(fault_server.mcp_url, headers=headers)).status_code == 200
        assert (
            await client.post(fault_server.mcp_url, json=rpc("ping", 2), headers=headers)
        ).status_code == 404


async def test_fault_send_reaches_the_get_stream(fault_server: FaultControl) -> None:
    async with httpx2.AsyncClient(timeout=10) as client:
        session_id = await raw_initialize(client, fault_server.mcp_url)
        assert await fault_server.send(rpc("ping", "server-1")) == 1
        async with client.stream(
            "GET", fault_server.mcp_url, headers=session_headers(session_id)
        ) as response:
            assert response.status_code == 200
            event = (await collect_events(response, limit=1))[0]
        assert json.loads(event.data) == {"jsonrpc": "2.0", "id": "server-1", "method": "ping"}


async def test_fault_strict_protocol_version(fault_server: FaultControl) -> None:
    await fault_server.configure(strict_protocol_version=True, initialize_version="2025-06-18")
    async with httpx2.AsyncClient(timeout=10) as client:
        response = await client.post(
            fault_server.mcp_url, json=rpc("initialize", 1, **INIT_PARAMS), headers=STREAM_HEADERS
        )
        events = await collect_events(response)
        assert json.loads(events[0].data)["result"]["protocolVersion"] == "2025-06-18"
        headers = {**STREAM_HEADERS, "mcp-session-id": response.headers["mcp-session-id"]}
        assert (
            await client.post(fault_server.mcp_url, json=rpc("ping", 2), headers=headers)
        ).status_code == 400
        headers["mcp-protocol-version"] = "2025-06-18"
        assert (
            await client.post(fault_server.mcp_url, json=rpc("ping", 3), headers=headers)
        ).status_code == 200


# ---- the fault server: cut, dropped and resumed streams -------------------------------------------------------


async def test_fault_cut_mid_event_on_legacy_stream(fault_server: FaultControl) -> None:
    async with httpx2.AsyncClient(timeout=10) as client:
        async with client.stream("GET", fault_server.sse_url) as stream:
            raw = b""
            chunks = stream.aiter_raw()
            while b"\n\n" not in raw:
                raw += await chunks.__anext__()
            path = raw.split(b"data: ", 1)[1].split(b"\n", 1)[0].decode()
            await fault_server.configure(cut_mid_event={"count": 1})
            await client.post(fault_server.base_url + path, json=rpc("initialize", 1, **INIT_PARAMS))
            with pytest.raises(httpx2.RemoteProtocolError):
                async for chunk in chunks:
                    raw += chunk
    message = raw.split(b"\n\n", 1)[1]
    assert message.startswith(b"event: message\ndata: {") and not message.endswith(b"\n\n")
    assert (await fault_server.state())["sessions"] == []


async def test_fault_drop_post_stream_then_resume_without_duplicates(fault_server: FaultControl) -> None:
    await fault_server.configure(
        resumable=True, drop_post_stream={"after_events": 1, "rpc_method": "tools/call"}
    )
    async with httpx2.AsyncClient(timeout=10) as client:
        session_id = await raw_initialize(client, fault_server.mcp_url)
        call = rpc(
            "tools/call", 7, name="slow", arguments={"seconds": 0.3, "steps": 3}, _meta={"progressToken": 1}
        )
        async with client.stream(
            "POST", fault_server.mcp_url, json=call, headers=session_headers(session_id)
        ) as r:
            first = await collect_events(r)
        assert len(first) == 1 and first[0].id
        assert json.loads(first[0].data)["params"]["progress"] == 1
        headers = {**session_headers(session_id), "last-event-id": first[0].id}
        async with client.stream("GET", fault_server.mcp_url, headers=headers) as response:
            rest = await collect_events(response)
    messages = [json.loads(event.data) for event in rest]
    assert [m["params"]["progress"] for m in messages[:-1]] == [2, 3]
    assert messages[-1]["id"] == 7 and messages[-1]["result"]["content"][0]["text"] == "slept 0.3"
    assert len({event.id for event in first + rest}) == 4


async def test_fault_drop_before_any_id_is_not_resumable(fault_server: FaultControl) -> None:
    await fault_server.configure(drop_post_stream={"after_events": 0, "rpc_method": "tools/call"})
    async with httpx2.AsyncClient(timeout=10) as client:
        session_id = await raw_initialize(client, fault_server.mcp_url)
        call = rpc("tools/call", 8, name="echo", arguments={"text": "lost"})
        response = await client.post(fault_server.mcp_url, json=call, headers=session_headers(session_id))
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        assert response.text == ""
    async with sdk_client("streamable", fault_server.mcp_url) as session:
        await fault_server.configure(drop_post_stream={"after_events": 0, "rpc_method": "tools/call"})
        with pytest.raises(MCPError):
            await session.call_tool("echo", {"text": "lost"}, read_timeout_seconds=5)


async def test_fault_priming_and_early_close_with_retry(fault_server: FaultControl) -> None:
    await fault_server.configure(
        drop_post_stream={"after_events": 0, "retry_ms": 100, "rpc_method": "tools/call"}
    )
    async with httpx2.AsyncClient(timeout=10) as client:
        session_id = await raw_initialize(client, fault_server.mcp_url)
        call = rpc("tools/call", 9, name="slow", arguments={"seconds": 0.1, "steps": 1})
        async with client.stream(
            "POST", fault_server.mcp_url, json=call, headers=session_headers(session_id)
        ) as r:
            priming = await collect_events(r)
        assert len(priming) == 1 and priming[0].data == "" and priming[0].id and priming[0].retry == 100
        headers = {**session_headers(session_id), "last-event-id": priming[0].id}
        async with client.stream("GET", fault_server.mcp_url, headers=headers) as response:
            rest = await collect_events(response)
        assert [json.loads(event.data)["id"] for event in rest] == [9]
    # The SDK client follows the retry hint and resumes by itself.
    await fault_server.configure(
        priming=True, drop_post_stream={"after_events": 0, "retry_ms": 50, "rpc_method": "tools/call"}
    )
    async with sdk_client("streamable", fault_server.mcp_url) as session:
        assert text_of(await session.call_tool("slow", {"seconds": 0.1, "steps": 1})) == "slept 0.1"
    resumes = [
        e for e in await fault_server.requests() if e["method"] == "GET" and "last-event-id" in e["headers"]
    ]
    assert resumes


async def test_fault_sdk_client_resumes_a_dropped_stream(fault_server: FaultControl) -> None:
    await fault_server.configure(
        resumable=True, drop_post_stream={"after_events": 1, "rpc_method": "tools/call"}
    )
    async with sdk_client("streamable", fault_server.mcp_url) as session:
        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        result = await session.call_tool("slow", {"seconds": 0.3, "steps": 3}, progress_callback=on_progress)
        assert text_of(result) == "slept 0.3"
        assert progress == [1, 2, 3]


async def test_fault_control_rejects_unknown_switches(fault_server: FaultControl) -> None:
    with pytest.raises(AssertionError, match="unknown fault switch"):
        await fault_server.configure(no_such_switch=True)
    faults = await fault_server.configure(reset=True)
    assert faults["sse_line_ending"] == "lf" and faults["http_error"] is None
