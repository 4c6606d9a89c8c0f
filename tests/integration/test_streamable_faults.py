"""The proxy against the fault-injecting server in Streamable HTTP mode (`/mcp`): what real servers won't do.

Each test gets a fresh fault server; assertions read its request log (`FaultControl.requests`) and session
state besides what the client receives.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.integration.clients import sampling_callback
from tests.integration.conftest import FaultControl, running_server
from tests.integration.test_streamable_relay import INIT_PARAMS, raw_handshake, read_nothing_for, rpc, text_of
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(60)]

Entry = dict[str, Any]


def posts(entries: list[Entry], method: str | None = None) -> list[Entry]:
    """The logged JSON-RPC POSTs (with `method` if given)."""
    return [
        entry
        for entry in entries
        if entry["method"] == "POST"
        and isinstance(entry["body"], dict)
        and (method is None or entry["body"].get("method") == method)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_posts(control: FaultControl, method: str, count: int, timeout: float = 5.0) -> None:
    """Wait until the server has logged `count` POSTs of `method` (its log lives in another process)."""
    await control.wait_for_log(lambda entries: len(posts(entries, method)) >= count, timeout)


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    await eventually(predicate, timeout)


# ---- sessions: expiry, restart, headers, DELETE -----------------------------------------------------------------


async def test_session_expiry_with_calls_in_flight(fault_server: FaultControl, proxy_session: Any) -> None:
    """The server forgets every session while calls run: those get errors; the proxy re-initializes and goes on."""
    notices: list[Any] = []

    async def on_message(message: Any) -> None:
        notices.append(message)

    async with proxy_session(fault_server.mcp_url, message_handler=on_message) as session:
        await session.set_logging_level("warning")
        await session.subscribe_resource("test://watched")
        [old] = (await fault_server.state())["sessions"]
        outcomes: dict[int, Any] = {}

        async def slow(index: int) -> None:
            try:
                outcomes[index] = text_of(await session.call_tool("slow", {"seconds": 40, "steps": 4}))
            except MCPError as exc:
                outcomes[index] = exc

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for index in range(3):
                group.start_soon(slow, index)
            await wait_for_posts(fault_server, "tools/call", 3)
            await fault_server.restart()
            # The next call meets a 404: transparent re-initialization, then the call itself.
            assert text_of(await session.call_tool("echo", {"text": "again"})) == "again"
        # The calls of the dead session were answered with errors, long before their 40 s (or a timeout) ran out.
        assert sorted(outcomes) == [0, 1, 2]
        assert all(isinstance(outcome, MCPError) for outcome in outcomes.values()), outcomes
        assert time.monotonic() - started < 30
        assert text_of(await session.call_tool("echo", {"text": "later"})) == "later"
        [new] = (await fault_server.state())["sessions"]

    entries = await fault_server.requests()
    initializes = posts(entries, "initialize")
    assert len(initializes) == 2
    first, second = initializes
    # The client's own initialize replayed: same params, a proxy id, and no stale session id.
    assert second["body"]["params"] == first["body"]["params"]
    assert second["body"]["id"] != first["body"]["id"]
    assert "mcp-session-id" not in second["headers"]
    assert new["session_id"] != old["session_id"]
    # The new session was rebuilt: initialized, log level and subscription restored.
    assert new["initialized"] and new["log_level"] == "warning" and new["subscriptions"] == ["test://watched"]
    after = [entry for entry in entries if entry["seq"] > second["seq"]]
    assert posts(after, "notifications/initialized")
    assert all(entry["headers"].get("mcp-session-id") == new["session_id"] for entry in after)
    echo_404 = [e for e in posts(entries, "tools/call") if e["status"] == 404]
    assert [e["body"]["params"]["arguments"] for e in echo_404] == [{"text": "again"}]
    # Detection is not repeated: the legacy transport was never tried.
    assert all(entry["path"] == "/mcp" for entry in entries)
    # The GET stream was reopened on the new session.
    assert any(
        e["method"] == "GET" and e["headers"].get("mcp-session-id") == new["session_id"] for e in entries
    )
    # The client was told its lists may have changed.
    kinds = {type(message) for message in notices}
    assert types.ToolListChangedNotification in kinds
    assert types.ResourceListChangedNotification in kinds


async def test_injected_404_mid_conversation(fault_server: FaultControl, proxy_session: Any) -> None:
    """A 404 on one call while two others stream on the old session: each call gets exactly one answer."""
    async with proxy_session(fault_server.mcp_url) as session:
        outcomes: list[Any] = []

        async def slow() -> None:
            try:
                outcomes.append(text_of(await session.call_tool("slow", {"seconds": 1.5, "steps": 3})))
            except MCPError as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as group:
            group.start_soon(slow)
            group.start_soon(slow)
            await wait_for_posts(fault_server, "tools/call", 2)
            await fault_server.configure(http_error={"status": 404, "rpc_method": "tools/call"})
            assert text_of(await session.call_tool("echo", {"text": "re-sent"})) == "re-sent"
        assert len(outcomes) == 2
        assert text_of(await session.call_tool("echo", {"text": "later"})) == "later"
    assert len(posts(await fault_server.requests(), "initialize")) == 2


async def test_server_restart_between_calls(fault_server: FaultControl, proxy_session: Any) -> None:
    async with proxy_session(fault_server.mcp_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "one"})) == "one"
        await fault_server.restart()
        assert text_of(await session.call_tool("echo", {"text": "two"})) == "two"
        await fault_server.restart()
        assert [t.name for t in (await session.list_tools()).tools] == ["echo", "slow", "log", "sample"]
    assert len(posts(await fault_server.requests(), "initialize")) == 3


async def test_server_process_restart_on_the_same_port(proxy_session: Any) -> None:
    """The server process dies (connection refused), then a new one listens on the same port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    first = running_server("tests.servers.fault_server", "", "--port", str(port))
    first.__enter__()
    try:
        async with proxy_session(url, "--queue-timeout", "5") as session:
            assert text_of(await session.call_tool("echo", {"text": "before"})) == "before"
            first.__exit__(None, None, None)
            first = None
            with anyio.fail_after(15), pytest.raises(MCPError):
                await session.call_tool("echo", {"text": "while down"})
            with running_server("tests.servers.fault_server", "", "--port", str(port)):
                with anyio.fail_after(15):
                    assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"
    finally:
        if first is not None:
            first.__exit__(None, None, None)


async def test_session_headers_on_every_request(fault_server: FaultControl, proxy_session: Any) -> None:
    """`Mcp-Session-Id` and the negotiated `MCP-Protocol-Version` on every request after initialize."""
    await fault_server.configure(strict_protocol_version=True, initialize_version="2025-06-18")
    async with proxy_session(fault_server.mcp_url, sampling_callback=sampling_callback) as session:
        assert session.initialize_result is not None
        assert session.initialize_result.protocol_version == "2025-06-18"
        assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"
        assert text_of(await session.call_tool("sample", {"prompt": "p"})) == "sampled:p"
        await session.send_ping()
        await fault_server.wait_for_request(lambda e: e["method"] == "GET")
        [state] = (await fault_server.state())["sessions"]
    await fault_server.wait_for_request(lambda e: e["method"] == "DELETE")
    entries = await fault_server.requests()
    assert entries[0]["body"]["method"] == "initialize"
    assert "mcp-session-id" not in entries[0]["headers"]
    assert "mcp-protocol-version" not in entries[0]["headers"]
    later = entries[1:]
    assert {entry["method"] for entry in later} == {"POST", "GET", "DELETE"}
    for entry in later:
        assert entry["headers"].get("mcp-session-id") == state["session_id"], entry
        assert entry["headers"].get("mcp-protocol-version") == "2025-06-18", entry
        assert entry["status"] in (200, 202), entry
    for entry in posts(entries):
        assert entry["headers"]["content-type"].startswith("application/json")
        assert set(entry["headers"]["accept"].replace(" ", "").split(",")) >= {
            "application/json",
            "text/event-stream",
        }


async def test_delete_with_the_session_id_at_shutdown(fault_server: FaultControl, raw_proxy: Any) -> None:
    async with raw_proxy(fault_server.mcp_url) as proxy:
        await raw_handshake(proxy)
        await proxy.send(rpc("ping", 1))
        assert (await proxy.read_message())["id"] == 1
        [state] = (await fault_server.state())["sessions"]
        await proxy.close_stdin()
        assert await proxy.wait(20) == 0
    [delete] = [entry for entry in await fault_server.requests() if entry["method"] == "DELETE"]
    assert delete["headers"]["mcp-session-id"] == state["session_id"]
    assert delete["status"] == 200
    assert (await fault_server.state())["sessions"] == []


async def test_delete_refused_with_405_is_fine(fault_server: FaultControl, raw_proxy: Any) -> None:
    await fault_server.configure(delete_allowed=False, get_stream=False)
    async with raw_proxy(fault_server.mcp_url) as proxy:
        await raw_handshake(proxy)
        await proxy.close_stdin()
        assert await proxy.wait(10) == 0
        assert "Traceback" not in proxy.stderr_text()
    assert [e["status"] for e in await fault_server.requests() if e["method"] == "DELETE"] == [405]


# ---- the GET stream ---------------------------------------------------------------------------------------------


async def test_405_on_get_is_fine(fault_server: FaultControl, proxy_session: Any) -> None:
    await fault_server.configure(get_stream=False)
    async with proxy_session(fault_server.mcp_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "no GET"})) == "no GET"
        get = await fault_server.wait_for_request(lambda e: e["method"] == "GET" and e["status"] is not None)
        # The 405 answered, two more calls go through the same session: no GET retried in between.
        assert text_of(await session.call_tool("echo", {"text": "still"})) == "still"
        assert text_of(await session.call_tool("echo", {"text": "and still"})) == "and still"
        assert get["status"] == 405
    gets = [e for e in await fault_server.requests() if e["method"] == "GET"]
    # Asked once, told 405, never asked again.
    assert [e["status"] for e in gets] == [405]


async def test_server_messages_on_the_get_stream(fault_server: FaultControl, proxy_session: Any) -> None:
    """A notification and a server request pushed on the standalone stream; the client's answer is POSTed."""
    received: list[Any] = []

    async def on_message(message: Any) -> None:
        received.append(message)

    async with proxy_session(fault_server.mcp_url, message_handler=on_message) as session:
        await fault_server.wait_for_request(lambda e: e["method"] == "GET")
        await fault_server.send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
        await fault_server.send({"jsonrpc": "2.0", "id": 1, "method": "ping"})
        answer = await fault_server.wait_for_request(
            lambda e: isinstance(e["body"], dict) and "result" in e["body"], timeout=10
        )
        assert answer["body"] == {"jsonrpc": "2.0", "id": 1, "result": {}}
        await wait_until(lambda: any(isinstance(m, types.ToolListChangedNotification) for m in received))
        assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"


async def test_server_request_ids_colliding_with_the_clients(
    fault_server: FaultControl, proxy_session: Any
) -> None:
    """The fault server numbers its sampling requests 1, 2, …: the same values as the client's own ids."""
    async with proxy_session(fault_server.mcp_url, sampling_callback=sampling_callback) as session:
        for prompt in ("a", "b", "c"):
            assert text_of(await session.call_tool("sample", {"prompt": prompt})) == f"sampled:{prompt}"
    answers = [e["body"] for e in posts(await fault_server.requests()) if "result" in e["body"]]
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert [a["result"]["content"]["text"] for a in answers] == ["sampled:a", "sampled:b", "sampled:c"]


# ---- broken and resumed response streams ------------------------------------------------------------------------


async def test_stream_drop_after_an_event_id_is_resumed(fault_server: FaultControl, raw_proxy: Any) -> None:
    await fault_server.configure(
        resumable=True, drop_post_stream={"after_events": 1, "rpc_method": "tools/call"}
    )
    async with raw_proxy(fault_server.mcp_url) as proxy:
        await raw_handshake(proxy)
        call = rpc(
            "tools/call", 7, name="slow", arguments={"seconds": 0.6, "steps": 3}, _meta={"progressToken": "t"}
        )
        await proxy.send(call)
        answer, before = await proxy.read_until(lambda m: m.get("id") == 7, timeout=10)
        assert answer["result"]["content"][0]["text"] == "slept 0.6"
        # Every progress notification exactly once, in order; nothing after the response.
        assert [m["params"]["progress"] for m in before if m.get("method") == "notifications/progress"] == [
            1,
            2,
            3,
        ]
        assert await read_nothing_for(proxy, 0.7) == []
    entries = await fault_server.requests()
    resumes = [e for e in entries if e["method"] == "GET" and "last-event-id" in e["headers"]]
    assert len(resumes) == 1
    assert resumes[0]["headers"]["last-event-id"].endswith(".0")  # the id of the one event seen
    assert resumes[0]["headers"]["mcp-session-id"]
    assert len(posts(entries, "tools/call")) == 1  # resumed, not re-sent


async def test_early_close_honours_retry(fault_server: FaultControl, proxy_session: Any) -> None:
    """2025-11-25 polling: a priming event with `retry: 1500`, then the server closes the stream."""
    await fault_server.configure(
        priming=True, drop_post_stream={"after_events": 1, "retry_ms": 1500, "rpc_method": "tools/call"}
    )
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with proxy_session(fault_server.mcp_url) as session:
        result = await session.call_tool("slow", {"seconds": 0.2, "steps": 2}, progress_callback=on_progress)
    assert text_of(result) == "slept 0.2"
    assert progress == [1, 2]
    entries = await fault_server.requests()
    resumes = [e for e in entries if e["method"] == "GET" and "last-event-id" in e["headers"]]
    assert len(resumes) == 1
    # Measured on the server's clock: from the closed stream to the resuming GET, at least the `retry`.
    [call] = posts(entries, "tools/call")
    waited = resumes[0]["at"] - call["ended"]
    assert waited >= 1.5 - 0.05, f"resumed {waited:.2f} s after the close"


async def test_close_right_after_priming_is_resumed(fault_server: FaultControl, proxy_session: Any) -> None:
    """The stream ends right after the priming event (id, empty data, `retry`): resumed from that id."""
    await fault_server.configure(
        drop_post_stream={"after_events": 0, "retry_ms": 100, "rpc_method": "tools/call"}
    )
    async with proxy_session(fault_server.mcp_url) as session:
        assert text_of(await session.call_tool("slow", {"seconds": 0.1, "steps": 1})) == "slept 0.1"
    [resume] = [
        e for e in await fault_server.requests() if e["method"] == "GET" and "last-event-id" in e["headers"]
    ]
    assert resume["headers"]["last-event-id"].endswith(".0")


async def test_stream_drop_before_any_id_is_an_error(fault_server: FaultControl, proxy_session: Any) -> None:
    async with proxy_session(fault_server.mcp_url) as session:
        await fault_server.configure(drop_post_stream={"after_events": 0, "rpc_method": "tools/call"})
        with anyio.fail_after(20), pytest.raises(MCPError) as lost:
            await session.call_tool("echo", {"text": "lost"})
        assert "stream" in lost.value.error.message
        assert text_of(await session.call_tool("echo", {"text": "next"})) == "next"


async def test_connection_cut_mid_event_is_an_error(fault_server: FaultControl, proxy_session: Any) -> None:
    async with proxy_session(fault_server.mcp_url) as session:
        await fault_server.configure(cut_mid_event={"count": 1})
        with anyio.fail_after(10), pytest.raises(MCPError):
            await session.call_tool("echo", {"text": "cut"})
        assert text_of(await session.call_tool("echo", {"text": "next"})) == "next"


# ---- SSE formatting, JSON bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("line_ending", ["crlf", "cr"])
async def test_slow_chunk_split_sse(line_ending: str, fault_server: FaultControl, proxy_session: Any) -> None:
    await fault_server.configure(
        sse_line_ending=line_ending,
        sse_chunk_size=5,
        sse_chunk_delay=0.003,
        sse_comments=True,
        sse_multiline_data=True,
        sse_retry_ms=200,
    )
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    text = 'multi\nline ✓ é — 日本語 "quoted" \\ end'
    async with proxy_session(fault_server.mcp_url, read_timeout=30) as session:
        assert text_of(await session.call_tool("echo", {"text": text})) == text
        result = await session.call_tool("slow", {"seconds": 0.2, "steps": 2}, progress_callback=on_progress)
        assert text_of(result) == "slept 0.2"
        assert progress == [1, 2]


async def test_pretty_json_body_relayed_as_one_line(fault_server: FaultControl, raw_proxy: Any) -> None:
    await fault_server.configure(json_response=True, json_pretty=True)
    async with raw_proxy(fault_server.mcp_url) as proxy:
        await raw_handshake(proxy)
        await proxy.send(rpc("tools/call", 5, name="echo", arguments={"text": "a\nb"}))
        line = await proxy.readline()
        answer = json.loads(line)
        assert answer["id"] == 5 and answer["result"]["content"][0]["text"] == "a\nb"
        await proxy.send(rpc("tools/list", 6))
        listed = json.loads(await proxy.readline())
        assert [tool["name"] for tool in listed["result"]["tools"]] == ["echo", "slow", "log", "sample"]


async def test_multiline_sse_data_relayed_as_one_line(fault_server: FaultControl, raw_proxy: Any) -> None:
    await fault_server.configure(sse_multiline_data=True)
    async with raw_proxy(fault_server.mcp_url) as proxy:
        await raw_handshake(proxy)
        await proxy.send(rpc("tools/call", 5, name="echo", arguments={"text": "a\nb"}))
        answer = json.loads(await proxy.readline())
        assert answer["id"] == 5 and answer["result"]["content"][0]["text"] == "a\nb"


# ---- HTTP error statuses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_retries_an_idempotent_request(
    status: int, fault_server: FaultControl, proxy_session: Any
) -> None:
    async with proxy_session(fault_server.mcp_url) as session:
        await fault_server.configure(
            http_error={"status": status, "rpc_method": "tools/list", "headers": {"retry-after": "1"}}
        )
        tools = await session.list_tools()
        assert len(tools.tools) == 4
    refused, retried = posts(await fault_server.requests(), "tools/list")
    assert [refused["status"], retried["status"]] == [status, 200]
    # Measured on the server's clock: the retry came no sooner than `Retry-After` asked.
    waited = retried["at"] - refused["ended"]
    assert waited >= 1.0 - 0.05, f"retried after {waited:.2f} s"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_tools_call_is_not_retried(status: int, fault_server: FaultControl, proxy_session: Any) -> None:
    async with proxy_session(fault_server.mcp_url) as session:
        await fault_server.configure(
            http_error={"status": status, "rpc_method": "tools/call", "headers": {"retry-after": "1"}}
        )
        with anyio.fail_after(5), pytest.raises(MCPError) as failed:
            await session.call_tool("echo", {"text": "once"})
        assert str(status) in failed.value.error.message
        assert text_of(await session.call_tool("echo", {"text": "twice"})) == "twice"
    assert [e["status"] for e in posts(await fault_server.requests(), "tools/call")] == [status, 200]


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_errors_name_status_and_challenge(
    status: int, fault_server: FaultControl, proxy_session: Any
) -> None:
    challenge = 'Bearer realm="fault-server", error="invalid_token", scope="tools"'
    async with proxy_session(fault_server.mcp_url) as session:
        await fault_server.configure(
            http_error={
                "status": status,
                "rpc_method": "tools/call",
                "headers": {"www-authenticate": challenge},
            }
        )
        with anyio.fail_after(5), pytest.raises(MCPError) as failed:
            await session.call_tool("echo", {"text": "x"})
        message = failed.value.error.message
        assert str(status) in message and challenge in message
        assert text_of(await session.call_tool("echo", {"text": "y"})) == "y"


async def test_401_on_initialize(fault_server: FaultControl, proxy_session: Any) -> None:
    challenge = 'Bearer resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource"'
    await fault_server.configure(
        http_error={"status": 401, "rpc_method": "initialize", "www_authenticate": challenge}
    )
    async with proxy_session(fault_server.mcp_url, era="none") as session:
        with anyio.fail_after(10), pytest.raises(MCPError) as failed:
            await session.initialize()
        assert "401" in failed.value.error.message and challenge in failed.value.error.message


async def test_jsonrpc_error_body_with_an_http_error_answers_the_request(
    fault_server: FaultControl, proxy_session: Any
) -> None:
    async with proxy_session(fault_server.mcp_url) as session:
        body = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32602, "message": "bad arguments, says the server"},
        }
        await fault_server.configure(http_error={"status": 400, "rpc_method": "tools/call", "body": body})
        with anyio.fail_after(5), pytest.raises(MCPError) as failed:
            await session.call_tool("echo", {"text": "x"})
        assert failed.value.error.code == -32602
        assert failed.value.error.message == "bad arguments, says the server"


# ---- the proxy's own traffic ------------------------------------------------------------------------------------


async def test_keepalive_ping_never_reaches_the_client(fault_server: FaultControl, raw_proxy: Any) -> None:
    async with raw_proxy(fault_server.mcp_url, "--ping-interval", "1") as proxy:
        await raw_handshake(proxy)
        assert await read_nothing_for(proxy, 3.5) == []
        await proxy.send(rpc("ping", "client-ping"))
        assert await proxy.read_message() == {"jsonrpc": "2.0", "id": "client-ping", "result": {}}
    pings = [
        e["body"] for e in posts(await fault_server.requests(), "ping") if e["body"]["id"] != "client-ping"
    ]
    assert len(pings) >= 2
    ids = [ping["id"] for ping in pings]
    # The proxy's own ids: unique, and never one the client used.
    assert all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids)
    assert not set(ids) & {0, "client-ping"}


async def test_initialize_replay_answer_never_reaches_the_client(
    fault_server: FaultControl, raw_proxy: Any
) -> None:
    async with raw_proxy(fault_server.mcp_url) as proxy:
        await raw_handshake(proxy, request_id="init-1")
        await fault_server.restart()
        await proxy.send(rpc("tools/call", 2, name="echo", arguments={"text": "after"}))
        answer, skipped = await proxy.read_until(lambda m: m.get("id") == 2, timeout=10)
        assert answer["result"]["content"][0]["text"] == "after"
        # Only list_changed notices came before: no second initialize result, nothing with a proxy id.
        assert all("id" not in message for message in skipped), skipped
        assert {m["method"] for m in skipped} <= {
            "notifications/tools/list_changed",
            "notifications/resources/list_changed",
            "notifications/prompts/list_changed",
        }
        assert await read_nothing_for(proxy, 0.5) == []
    [_, replayed] = posts(await fault_server.requests(), "initialize")
    assert replayed["body"]["params"] == INIT_PARAMS


# ---- more session and stream edge cases -------------------------------------------------------------------------


async def test_many_requests_meet_the_expired_session_at_once(
    fault_server: FaultControl, proxy_session: Any
) -> None:
    """Ten calls hit 404 together: one re-initialization, every call re-sent once and answered."""
    async with proxy_session(fault_server.mcp_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "warm"})) == "warm"
        await fault_server.restart()
        results: dict[int, str] = {}

        async def call(index: int) -> None:
            results[index] = text_of(await session.call_tool("echo", {"text": str(index)}))

        with anyio.fail_after(15):
            async with anyio.create_task_group() as group:
                for index in range(10):
                    group.start_soon(call, index)
        assert results == {index: str(index) for index in range(10)}
    entries = await fault_server.requests()
    assert len(posts(entries, "initialize")) == 2
    served = [
        e["body"]["params"]["arguments"]["text"] for e in posts(entries, "tools/call") if e["status"] == 200
    ]
    assert sorted(served) == sorted(["warm", *map(str, range(10))])


async def test_dropped_get_stream_is_resumed_without_duplicates(
    fault_server: FaultControl, proxy_session: Any
) -> None:
    await fault_server.configure(resumable=True)
    received: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            received.append(str(message.params.uri))

    async with proxy_session(fault_server.mcp_url, message_handler=on_message) as session:
        await fault_server.wait_for_state(
            lambda s: bool(s["sessions"]) and s["sessions"][0]["get_stream_open"]
        )
        updated = {"jsonrpc": "2.0", "method": "notifications/resources/updated"}
        await fault_server.send({**updated, "params": {"uri": "test://a"}})
        await wait_until(lambda: received == ["test://a"])
        await fault_server.configure(cut_mid_event={"count": 1})
        await fault_server.send({**updated, "params": {"uri": "test://b"}})
        await wait_until(lambda: len(received) >= 2, timeout=10)
        await fault_server.send({**updated, "params": {"uri": "test://c"}})
        await wait_until(lambda: len(received) >= 3, timeout=10)
        # A last one on the same stream: anything replayed twice would have come before it.
        await fault_server.send({**updated, "params": {"uri": "test://d"}})
        await wait_until(lambda: "test://d" in received, timeout=10)
        assert received == ["test://a", "test://b", "test://c", "test://d"]
        assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"
    resumes = [
        e for e in await fault_server.requests() if e["method"] == "GET" and "last-event-id" in e["headers"]
    ]
    assert [e["headers"]["last-event-id"] for e in resumes] == [
        f"{resumes[0]['headers']['mcp-session-id']}-get.0"
    ]


async def test_server_request_of_a_json_answered_call_comes_on_the_get_stream(
    fault_server: FaultControl, proxy_session: Any
) -> None:
    """With JSON answers the fault server sends its sampling request on the GET stream instead."""
    await fault_server.configure(json_response=True)
    async with proxy_session(fault_server.mcp_url, sampling_callback=sampling_callback) as session:
        with anyio.fail_after(10):
            assert text_of(await session.call_tool("sample", {"prompt": "via GET"})) == "sampled:via GET"


async def test_every_request_of_a_refused_batch_is_answered(
    fault_server: FaultControl, raw_proxy: Any
) -> None:
    """The fault server refuses batches (400, one error with id null): each request in it still gets an answer."""
    async with raw_proxy(fault_server.mcp_url) as proxy:
        await raw_handshake(proxy)
        await proxy.send(
            [rpc("ping", "b1"), rpc("tools/list", "b2"), rpc("notifications/progress-like-ignored")]
        )
        answers: list[Any] = []
        with anyio.fail_after(10):
            while {a.get("id") for a in answers if isinstance(a, dict)} < {"b1", "b2"}:
                message = await proxy.read_message()
                answers.extend(message if isinstance(message, list) else [message])
        by_id = {a["id"]: a for a in answers}
        assert set(by_id) == {"b1", "b2"}
        assert all("error" in answer or "result" in answer for answer in by_id.values())
        assert await read_nothing_for(proxy, 0.5) == []


async def test_stdin_closed_with_a_call_in_flight(fault_server: FaultControl, raw_proxy: Any) -> None:
    """The client goes away mid-call: the call is answered with an error, the session DELETEd, all within bounds."""
    async with raw_proxy(fault_server.mcp_url) as proxy:
        await raw_handshake(proxy)
        await proxy.send(rpc("tools/call", 2, name="slow", arguments={"seconds": 30, "steps": 1}))
        await wait_for_posts(fault_server, "tools/call", 1)
        started = time.monotonic()
        await proxy.close_stdin()
        answer = await proxy.read_message(timeout=20)
        assert answer["id"] == 2 and "error" in answer
        assert await proxy.wait(20) == 0
        assert time.monotonic() - started < 25  # the call would have taken 30 s
    assert [e["method"] for e in await fault_server.requests()].count("DELETE") == 1


async def test_request_timeout_cancels_upstream_and_progress_extends_it(
    fault_server: FaultControl, raw_proxy: Any
) -> None:
    async with raw_proxy(fault_server.mcp_url, "--request-timeout", "1") as proxy:
        await raw_handshake(proxy)
        # Silent for 3 s: answered with an error after about 1 s, and cancelled upstream.
        await proxy.send(rpc("tools/call", 2, name="slow", arguments={"seconds": 3, "steps": 1}))
        started = time.monotonic()
        answer = await proxy.read_message(timeout=5)
        assert answer["id"] == 2 and "error" in answer  # the server would have answered with a result
        assert time.monotonic() - started >= 0.9
        state = await fault_server.wait_for_state(
            lambda s: bool(s["sessions"]) and s["sessions"][0]["cancelled"] == [2]
        )
        assert state["sessions"][0]["cancelled"] == [2]
        # 3 s with progress every 0.5 s: each notification restarts the clock, so the call completes.
        call = rpc(
            "tools/call", 3, name="slow", arguments={"seconds": 3, "steps": 6}, _meta={"progressToken": "p3"}
        )
        await proxy.send(call)
        answer, before = await proxy.read_until(lambda m: m.get("id") == 3, timeout=10)
        assert answer["result"]["content"][0]["text"] == "slept 3.0"
        assert len(before) == 6
        assert await read_nothing_for(proxy, 0.5) == []


async def test_configured_headers_on_every_request_and_kept_secret(
    fault_server: FaultControl, raw_proxy: Any
) -> None:
    secret = "s3cret-token-value"
    async with raw_proxy(
        fault_server.mcp_url, "--header", f"Authorization: Bearer {secret}", "--log-level", "debug"
    ) as proxy:
        await raw_handshake(proxy)
        await fault_server.configure(http_error={"status": 401, "rpc_method": "tools/call"})
        await proxy.send(rpc("tools/call", 2, name="echo", arguments={"text": "x"}))
        refused = await proxy.read_message()
        assert refused["id"] == 2 and "401" in refused["error"]["message"]
        assert secret not in json.dumps(refused)
        await fault_server.wait_for_request(lambda e: e["method"] == "GET")
        await proxy.close_stdin()
        assert await proxy.wait(10) == 0
        assert secret not in proxy.stderr_text()
    entries = await fault_server.requests()
    assert {e["method"] for e in entries} == {"POST", "GET", "DELETE"}
    assert all(e["headers"].get("authorization") == f"Bearer {secret}" for e in entries)


async def test_a_server_without_sessions(fault_server: FaultControl, proxy_session: Any) -> None:
    """No `Mcp-Session-Id` on initialize: none is invented, no GET stream is needed, no DELETE at the end."""
    await fault_server.configure(session_ids=False)
    async with proxy_session(fault_server.mcp_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"
        await session.send_ping()
    entries = await fault_server.wait_settled()  # the proxy has exited: this is every request it made
    assert all("mcp-session-id" not in e["headers"] for e in entries)
    assert all(e["method"] == "POST" for e in entries)
    assert all(e["headers"].get("mcp-protocol-version") == "2025-11-25" for e in entries[1:])


async def test_restart_during_a_resumable_call(fault_server: FaultControl, proxy_session: Any) -> None:
    """The session dies while a resumable stream is open: the resume meets 404, the call gets an error."""
    await fault_server.configure(resumable=True)
    progressed = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progressed.set()

    async with proxy_session(fault_server.mcp_url) as session:
        async with anyio.create_task_group() as group:

            async def restart_soon() -> None:
                await progressed.wait()  # the resumable stream is open and has carried an event
                await fault_server.restart()

            group.start_soon(restart_soon)
            # Answered (with an error) long before the call's 40 s.
            with anyio.fail_after(30), pytest.raises(MCPError):
                await session.call_tool("slow", {"seconds": 40, "steps": 80}, progress_callback=on_progress)
        assert text_of(await session.call_tool("echo", {"text": "new session"})) == "new session"


async def test_stray_and_invalid_server_messages_are_dropped(
    fault_server: FaultControl, raw_proxy: Any
) -> None:
    """A response for an id nobody asked for, and an event that is not JSON: neither reaches the client."""
    async with raw_proxy(fault_server.mcp_url) as proxy:
        await raw_handshake(proxy)
        await fault_server.wait_for_state(
            lambda s: bool(s["sessions"]) and s["sessions"][0]["get_stream_open"]
        )
        await fault_server.send({"jsonrpc": "2.0", "id": 999, "result": {"stray": True}})
        await fault_server.send({"jsonrpc": "2.0", "id": "mcp-sse-proxy-0-1", "result": {"stray": True}})
        assert await read_nothing_for(proxy, 0.5) == []
        await fault_server.configure(invalid_json={"count": 1})
        await proxy.send(rpc("tools/call", 1, name="echo", arguments={"text": "after junk"}))
        answer = await proxy.read_message()
        assert answer["id"] == 1 and answer["result"]["content"][0]["text"] == "after junk"
        assert await read_nothing_for(proxy, 0.3) == []


async def test_the_proxys_own_messages_show_in_the_trace(
    fault_server: FaultControl, raw_proxy: Any, tmp_path: Any
) -> None:
    """The replayed handshake and the keepalive ping are recorded like any message (proxy→server, and the
    server's answers server→proxy), though the client never sees them."""
    trace = tmp_path / "trace.jsonl"
    async with raw_proxy(fault_server.mcp_url, "--trace", str(trace), "--ping-interval", "1") as proxy:
        await raw_handshake(proxy, request_id="init-1")
        await fault_server.restart()
        await proxy.send(rpc("tools/call", 2, name="echo", arguments={"text": "after"}))
        await proxy.read_until(lambda m: m.get("id") == 2, timeout=10)
        assert await read_nothing_for(proxy, 2.5) == []  # a keepalive ping goes out meanwhile
        await proxy.close_stdin()
        assert await proxy.wait() == 0
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    out = [r for r in records if r["direction"] == "proxy_to_server"]
    answered = {r["id"] for r in records if r["direction"] == "server_to_proxy"}
    own = [r for r in out if r["kind"] == "request" and r["id"] not in ("init-1", 2)]
    replayed = [r for r in own if r["method"] == "initialize"]
    pings = [r for r in own if r["method"] == "ping"]
    assert replayed and replayed[0]["id"] in answered, records
    assert pings and all(p["id"] in answered for p in pings), records
    assert len([r for r in out if r["id"] == "init-1"]) == 1, records  # the client's, sent by detection
    initialized = [r for r in out if r["method"] == "notifications/initialized"]
    assert len(initialized) == 2, records  # the client's, and the replayed one
    own_ids = {r["id"] for r in own}
    assert not [r for r in records if r["direction"] == "proxy_to_client" and r["id"] in own_ids]
