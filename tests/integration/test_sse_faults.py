"""The proxy against the fault-injecting server in legacy HTTP+SSE mode: what real servers won't do on demand.

Each test gets a fresh fault server (`fault_server`) and reads its request log to see what the proxy actually
sent. Two drivers: the SDK's stdio client (`proxy_session`) where the client's view is enough, and the bare
subprocess (`raw_proxy`) where the exact bytes on stdout, the ids or the timing matter.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.integration.conftest import FaultControl, RawProxy, RunningServer, running_server

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.integration,
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:.*2026-07-28"),
]

SSE = ("--transport", "sse")
INIT_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {"sampling": {}},
    "clientInfo": {"name": "fault-test-client", "version": "3.1"},
}


# ---- helpers -------------------------------------------------------------------------------------------------


def text_of(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def rpc(method: str, request_id: int | str | None = None, **params: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params:
        message["params"] = params
    return message


def call(request_id: int | str, tool: str, **arguments: Any) -> dict[str, Any]:
    return rpc("tools/call", request_id, name=tool, arguments=arguments)


async def handshake(proxy: RawProxy, request_id: int | str = "init") -> dict[str, Any]:
    """initialize + notifications/initialized over the raw pipe; the initialize response."""
    await proxy.send(rpc("initialize", request_id, **INIT_PARAMS))
    response = await proxy.read_message(timeout=10)
    assert response.get("id") == request_id and "result" in response, response
    await proxy.send(rpc("notifications/initialized"))
    return dict(response)


async def read_answer(proxy: RawProxy, request_id: int | str, timeout: float = 10.0) -> dict[str, Any]:
    """The response for `request_id`; other messages before it are allowed only if they are notifications."""
    message, skipped = await proxy.read_until(
        lambda m: m.get("id") == request_id and "method" not in m, timeout
    )
    assert all("id" not in m for m in skipped), skipped
    return dict(message)


def tool_text(response: dict[str, Any]) -> str:
    assert "result" in response, response
    return str(response["result"]["content"][0]["text"])


async def posted_methods(fault: FaultControl) -> list[str]:
    return [e["body"]["method"] for e in await fault.rpc_requests() if "method" in e["body"]]


async def exercise(session: Any) -> None:
    """A little of everything on a session: list, call, progress, a server request."""
    assert {tool.name for tool in (await session.list_tools()).tools} == {"echo", "slow", "log", "sample"}
    assert text_of(await session.call_tool("echo", {"text": 'a\nb "c" ☃'})) == 'a\nb "c" ☃'
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    assert text_of(
        await session.call_tool("slow", {"seconds": 0.2, "steps": 4}, progress_callback=on_progress)
    )
    assert progress == [1, 2, 3, 4]


@asynccontextmanager
async def fault_server_on(port: int = 0) -> AsyncIterator[FaultControl]:
    """A fault server process of our own on `port` (the fixture's cannot be restarted on the same port)."""
    manager = running_server("tests.servers.fault_server", "", "--port", str(port))
    server: RunningServer = await anyio.to_thread.run_sync(manager.__enter__)
    control = FaultControl(server)
    try:
        yield control
    finally:
        await control.aclose()
        await anyio.to_thread.run_sync(manager.__exit__, None, None, None)


# ---- SSE decoding ----------------------------------------------------------------------------------------------


async def test_events_split_into_tiny_chunks(fault_server: FaultControl, proxy_session: Any) -> None:
    await fault_server.configure(sse_chunk_size=3, sse_chunk_delay=0.001)
    async with proxy_session(fault_server.sse_url, *SSE) as session:
        await exercise(session)
        text = "0123456789" * 50
        assert text_of(await session.call_tool("echo", {"text": text})) == text


@pytest.mark.parametrize(
    "ending",
    ["crlf", "cr"],
)
async def test_crlf_and_cr_line_endings(ending: str, fault_server: FaultControl, raw_proxy: Any) -> None:
    await fault_server.configure(sse_line_ending=ending)
    async with raw_proxy(fault_server.sse_url, *SSE) as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        # Bounded well below the proxy's 60 s read timeout: a decoder stuck on the last line shows up here.
        answer = await proxy.read_message(timeout=5)
        assert answer["result"]["serverInfo"]["name"] == "fault-server"
        await proxy.send(rpc("notifications/initialized"))
        await proxy.send(
            rpc(
                "tools/call",
                2,
                name="slow",
                arguments={"seconds": 0.2, "steps": 2},
                _meta={"progressToken": 9},
            )
        )
        progress, skipped = await proxy.read_until(lambda m: m.get("id") == 2, timeout=5)
        assert [m["params"]["progress"] for m in skipped] == [1, 2]
        assert tool_text(progress) == "slept 0.2"
        await proxy.send(call(3, "echo", text=f"line\r\nending {ending}"))
        assert tool_text(await proxy.read_message(timeout=5)) == f"line\r\nending {ending}"


@pytest.mark.parametrize(
    "switches",
    [
        {"sse_multiline_data": True},
        {"sse_comments": True},
        {"sse_retry_ms": 1500},
        {"sse_multiline_data": True, "sse_comments": True, "sse_retry_ms": 50, "sse_line_ending": "crlf"},
    ],
    ids=["multiline-data", "comments", "retry", "all-at-once"],
)
async def test_multiline_data_comments_and_retry(
    switches: dict[str, Any], fault_server: FaultControl, proxy_session: Any
) -> None:
    await fault_server.configure(**switches)
    async with proxy_session(fault_server.sse_url, *SSE) as session:
        await exercise(session)


async def test_multiline_data_reaches_stdout_as_one_line(fault_server: FaultControl, raw_proxy: Any) -> None:
    await fault_server.configure(sse_multiline_data=True)
    async with raw_proxy(fault_server.sse_url, *SSE) as proxy:
        await handshake(proxy)
        await proxy.send(call(2, "echo", text="x\ny"))
        line = await proxy.readline()
        assert json.loads(line) == {
            "jsonrpc": "2.0",
            "id": 2,
            "result": {"content": [{"type": "text", "text": "x\ny"}]},
        }


async def test_invalid_json_event_is_skipped(fault_server: FaultControl, raw_proxy: Any) -> None:
    async with raw_proxy(fault_server.sse_url, *SSE) as proxy:
        await handshake(proxy)
        await fault_server.configure(invalid_json={"count": 1})
        await proxy.send(call(2, "echo", text="after garbage"))
        # The very next stdout line is the real answer: the broken event was neither forwarded nor fatal.
        first = await proxy.read_message()
        assert first["id"] == 2 and tool_text(first) == "after garbage"
        assert (await fault_server.configure())["invalid_json"] is None  # the fault really fired
        await proxy.send(rpc("ping", 3))
        assert await proxy.read_message() == {"jsonrpc": "2.0", "id": 3, "result": {}}
        assert "invalid json" in proxy.stderr_text().lower()
    # One stream; a 401 may add the RFC 9728 metadata probes (GET /.well-known/oauth-protected-resource...).
    streams = [e for e in await fault_server.requests() if e["method"] == "GET"]
    assert len([e for e in streams if not e["path"].startswith("/.well-known/")]) == 1


async def test_stream_cut_mid_event(fault_server: FaultControl, proxy_session: Any) -> None:
    async with proxy_session(fault_server.sse_url, *SSE) as session:
        await fault_server.configure(cut_mid_event={"count": 1})
        # The answer was on the stream that broke: the client gets an error, not silence.
        with anyio.fail_after(20), pytest.raises(MCPError) as caught:
            await session.call_tool("echo", {"text": "cut"})
        assert "lost" in caught.value.error.message
        # The proxy reconnects and replays the handshake by itself; the session goes on.
        assert text_of(await session.call_tool("echo", {"text": "whole"})) == "whole"
    gets = [e for e in await fault_server.requests() if e["method"] == "GET"]
    assert len(gets) == 2
    methods = await posted_methods(fault_server)
    assert methods.count("initialize") == 2 and methods.count("notifications/initialized") == 2


# ---- the endpoint event --------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["sse", "auto"])
async def test_cross_origin_endpoint_is_refused(
    transport: str, fault_server: FaultControl, raw_proxy: Any
) -> None:
    await fault_server.configure(endpoint="cross_origin")
    async with raw_proxy(fault_server.sse_url, "--transport", transport) as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        answer = await proxy.read_message(timeout=20)
        assert answer["id"] == 1 and answer["error"]["code"] == -32603
        assert "origin" in answer["error"]["message"]
        # Asking again is answered again: no hang, no silent drop.
        await proxy.send(rpc("initialize", 2, **INIT_PARAMS))
        again = await proxy.read_message(timeout=10)
        assert again["id"] == 2 and "error" in again
    # Nothing was POSTed anywhere on this server (the "other origin" is the same process under another name).
    assert [e for e in await fault_server.requests() if e["method"] == "POST" and e["path"] != "/sse"] == []


@pytest.mark.parametrize(
    ("mode", "url_suffix", "expected_path", "expected_query_tail"),
    [
        ("path", "/sse", "/messages/", ""),
        ("relative", "/sse", "/messages/", ""),
        ("relative", "/sse/", "/sse/messages/", ""),
        ("path_query", "/sse", "/messages/", "&tenant=a%20b&x=1"),
        ("absolute", "/sse", "/messages/", ""),
    ],
    ids=["leading-slash", "relative", "relative-under-dir", "query-string", "absolute-same-origin"],
)
async def test_endpoint_forms_resolve_against_the_sse_url(
    mode: str,
    url_suffix: str,
    expected_path: str,
    expected_query_tail: str,
    fault_server: FaultControl,
    proxy_session: Any,
) -> None:
    await fault_server.configure(endpoint=mode)
    async with proxy_session(fault_server.base_url + url_suffix, *SSE) as session:
        assert text_of(await session.call_tool("echo", {"text": mode})) == mode
    posts = [e for e in await fault_server.requests() if e["method"] == "POST"]
    assert posts and {e["path"] for e in posts} == {expected_path}
    for entry in posts:
        assert entry["query"].startswith("sessionId=")
        assert entry["query"].endswith(expected_query_tail)  # passed on as sent, not re-encoded
        assert entry["status"] == 202


# ---- HTTP errors and slow answers on POST --------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 429, 401, 403])
async def test_post_error_status_becomes_a_json_rpc_error(
    status: int, fault_server: FaultControl, proxy_session: Any
) -> None:
    async with proxy_session(fault_server.sse_url, *SSE) as session:
        await fault_server.configure(http_error={"status": status, "rpc_method": "tools/call"})
        with anyio.fail_after(20), pytest.raises(MCPError) as caught:
            await session.call_tool("echo", {"text": "refused"})
        assert str(status) in caught.value.error.message
        # A tools/call changes things on the server: it is not re-sent behind the client's back.
        assert [e["status"] for e in await fault_server.rpc_requests("tools/call")] == [status]
        assert text_of(await session.call_tool("echo", {"text": "next"})) == "next"
    # An HTTP error on one POST does not cost the session.
    # One stream; a 401 may add the RFC 9728 metadata probes (GET /.well-known/oauth-protected-resource...).
    streams = [e for e in await fault_server.requests() if e["method"] == "GET"]
    assert len([e for e in streams if not e["path"].startswith("/.well-known/")]) == 1


async def test_single_post_404_is_answered(fault_server: FaultControl, proxy_session: Any) -> None:
    async with proxy_session(fault_server.sse_url, *SSE) as session:
        # A 404: legacy servers say so for a session they forgot. Re-sending on a new session is fine (the
        # server never took the request); an error naming 404 would be too. Silence is not.
        await fault_server.configure(http_error={"status": 404, "rpc_method": "tools/call"})
        with anyio.fail_after(10):
            try:
                assert text_of(await session.call_tool("echo", {"text": "once"})) == "once"
            except MCPError as exc:
                assert "404" in exc.error.message
            else:
                gets = [e for e in await fault_server.requests() if e["method"] == "GET"]
                assert len(gets) == 2, "a re-sent request needs a new session"
                assert [e["status"] for e in await fault_server.rpc_requests("tools/call")] == [404, 202]
        assert text_of(await session.call_tool("echo", {"text": "next"})) == "next"


async def test_persistent_post_404_is_answered_naming_it(
    fault_server: FaultControl, proxy_session: Any
) -> None:
    # Outcomes are checked after the session closes: an assertion inside it would surface as an exception group.
    message = "succeeded"
    async with proxy_session(fault_server.sse_url, *SSE, "--queue-timeout", "3") as session:
        await fault_server.configure(http_error={"status": 404, "rpc_method": "tools/call", "count": -1})
        began = time.monotonic()
        try:
            await session.call_tool("echo", {"text": "always"}, read_timeout_seconds=30)
        except MCPError as exc:
            # The proxy's own answer names the 404; the client's timeout would not.
            message = exc.error.message
        elapsed = time.monotonic() - began
        sessions_opened = len([e for e in await fault_server.requests() if e["method"] == "GET"])
        await fault_server.configure(http_error=None)
        recovered = text_of(await session.call_tool("echo", {"text": "recovered"}))
    assert "404" in message, f"no answer from the proxy (client saw {message!r} after {elapsed:.1f} s)"
    # And it did not hammer the server with new sessions meanwhile.
    assert sessions_opened <= 4, f"{sessions_opened} SSE sessions opened in {elapsed:.1f} s"
    assert recovered == "recovered"


async def test_429_on_an_idempotent_request_is_retried_after_retry_after(
    fault_server: FaultControl, proxy_session: Any
) -> None:
    async with proxy_session(fault_server.sse_url, *SSE) as session:
        await fault_server.configure(
            http_error={"status": 429, "rpc_method": "tools/list", "retry_after": "1"}
        )
        began = time.monotonic()
        tools = await session.list_tools()
        assert len(tools.tools) == 4
        assert time.monotonic() - began >= 0.9
    assert [e["status"] for e in await fault_server.rpc_requests("tools/list")] == [429, 202]


async def test_slow_post_does_not_hold_up_other_messages(
    fault_server: FaultControl, proxy_session: Any
) -> None:
    async with proxy_session(fault_server.sse_url, *SSE) as session:
        await fault_server.configure(post_delay={"seconds": 2.0, "rpc_method": "tools/call"})
        results: list[str] = []

        async def delayed() -> None:
            results.append(text_of(await session.call_tool("echo", {"text": "delayed"})))

        async with anyio.create_task_group() as tg:
            began = time.monotonic()
            tg.start_soon(delayed)
            slow = await fault_server.wait_for_request(
                lambda e: (e["body"] or {}).get("method") == "tools/call"
            )
            await session.send_ping()
            assert len((await session.list_tools()).tools) == 4
            # Answered while the slow POST is still in the server, not after it (no wall clock needed).
            assert [e["status"] for e in await fault_server.requests() if e["seq"] == slow["seq"]] == [None]
            assert results == []  # the delayed call is still waiting for its POST
        assert results == ["delayed"]
        assert time.monotonic() - began >= 1.9


async def test_request_timeout_answers_and_cancels_upstream(
    fault_server: FaultControl, raw_proxy: Any
) -> None:
    async with raw_proxy(fault_server.sse_url, *SSE, "--request-timeout", "2") as proxy:
        await handshake(proxy)
        began = time.monotonic()
        await proxy.send(call("stuck", "slow", seconds=20, steps=1))
        answer = await read_answer(proxy, "stuck", timeout=15)
        elapsed = time.monotonic() - began
        assert 1.5 < elapsed < 15  # the timeout's answer, not the call's (20 s)
        assert answer["error"]["code"] == -32603 and "2 s" in answer["error"]["message"]
        # The server is told to stop working on it, under the client's id.
        await fault_server.wait_for_request(
            lambda e: (e["body"] or {}).get("method") == "notifications/cancelled"
        )
        state = await fault_server.state()
        assert state["sessions"][0]["cancelled"] == ["stuck"]
        # Progress restarts the clock: 3 s of work in 0.5 s steps outlives a 2 s timeout.
        await proxy.send(
            rpc(
                "tools/call",
                "busy",
                name="slow",
                arguments={"seconds": 3, "steps": 6},
                _meta={"progressToken": "p"},
            )
        )
        answer = await read_answer(proxy, "busy", timeout=10)
        assert tool_text(answer) == "slept 3.0"


# ---- cancellation, id spaces, ordering ----------------------------------------------------------------------


async def test_cancellation_reaches_the_server_and_silences_the_call(
    fault_server: FaultControl, raw_proxy: Any
) -> None:
    async with raw_proxy(fault_server.sse_url, *SSE) as proxy:
        await handshake(proxy)
        await proxy.send(call("long", "slow", seconds=1.5, steps=1))
        await fault_server.wait_for_request(lambda e: (e["body"] or {}).get("id") == "long")
        await proxy.send(rpc("notifications/cancelled", requestId="long", reason="user pressed stop"))
        await proxy.send(rpc("ping", "after"))
        assert await proxy.read_message() == {"jsonrpc": "2.0", "id": "after", "result": {}}
        # Nothing about the cancelled call may follow, even after it would have finished.
        with pytest.raises(TimeoutError):
            unexpected = await proxy.read_message(timeout=2.0)
            raise AssertionError(f"cancelled request still answered: {unexpected}")
    cancelled = [e["body"] for e in await fault_server.rpc_requests("notifications/cancelled")]
    assert cancelled == [rpc("notifications/cancelled", requestId="long", reason="user pressed stop")]


async def test_same_id_in_both_directions(fault_server: FaultControl, raw_proxy: Any) -> None:
    async with raw_proxy(fault_server.sse_url, *SSE) as proxy:
        await handshake(proxy)
        # The client's request 1 is in flight when the server sends its own request 1 (sampling).
        await proxy.send(call(1, "slow", seconds=1.0, steps=1))
        await proxy.send(call(2, "sample", prompt="twins"))
        server_request = await proxy.read_message()
        assert server_request["method"] == "sampling/createMessage" and server_request["id"] == 1
        reply = {
            "role": "assistant",
            "content": {"type": "text", "text": "answer for the server"},
            "model": "m",
        }
        await proxy.send({"jsonrpc": "2.0", "id": 1, "result": reply})
        sampled = await proxy.read_message()
        assert sampled["id"] == 2 and tool_text(sampled) == "answer for the server"
        slow = await proxy.read_message()
        assert slow["id"] == 1 and tool_text(slow) == "slept 1.0"


async def test_messages_before_ready_are_queued_in_order(fault_server: FaultControl, raw_proxy: Any) -> None:
    await fault_server.configure(sse_chunk_size=4, sse_chunk_delay=0.005)  # a slow endpoint event
    burst = [
        rpc("initialize", 1, **INIT_PARAMS),
        rpc("notifications/initialized"),
        rpc("tools/list", 2),
        call(3, "echo", text="third"),
        rpc("ping", 4),
    ]
    async with raw_proxy(fault_server.sse_url, *SSE) as proxy:
        await proxy.write(b"".join(json.dumps(m).encode() + b"\n" for m in burst))
        answers = {}
        with anyio.fail_after(15):
            while len(answers) < 4:
                message = await proxy.read_message()
                answers[message["id"]] = message
        assert answers[1]["result"]["serverInfo"]["name"] == "fault-server"
        assert len(answers[2]["result"]["tools"]) == 4
        assert tool_text(answers[3]) == "third"
        assert answers[4]["result"] == {}
    assert await posted_methods(fault_server) == [m["method"] for m in burst]


# ---- server restart and session replay -----------------------------------------------------------------------


async def test_session_drop_fails_in_flight_calls_then_replays(
    fault_server: FaultControl, proxy_session: Any
) -> None:
    changed: list[Any] = []

    async def on_message(message: Any) -> None:
        changed.append(message)

    async with proxy_session(fault_server.sse_url, *SSE, message_handler=on_message) as session:
        await session.set_logging_level("error")
        await session.subscribe_resource("test://watched")
        first_session = (await fault_server.state())["sessions"][0]["session_id"]
        outcome: list[Any] = []

        async def in_flight() -> None:
            try:
                outcome.append(await session.call_tool("slow", {"seconds": 20, "steps": 1}))
            except MCPError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(in_flight)
            await fault_server.wait_for_request(lambda e: (e["body"] or {}).get("method") == "tools/call")
            began = time.monotonic()
            await fault_server.restart()
        assert time.monotonic() - began < 15  # answered, long before the call's 20 s
        assert len(outcome) == 1 and isinstance(outcome[0], MCPError)
        assert "lost" in outcome[0].error.message
        assert text_of(await session.call_tool("echo", {"text": "new session"})) == "new session"

    state = (await fault_server.state())["sessions"]
    methods = await posted_methods(fault_server)
    initializes = [e["body"] for e in await fault_server.rpc_requests("initialize")]
    assert len(initializes) == 2
    # The client's own initialize, replayed under an id of the proxy's, and the initialized that follows it.
    assert initializes[1]["params"] == initializes[0]["params"]
    assert initializes[1]["id"] != initializes[0]["id"]
    assert methods.count("notifications/initialized") == 2
    replay_at = methods.index("initialize", 1)
    assert methods[replay_at + 1] == "notifications/initialized"
    # Log level and subscription were restored on the new session.
    assert methods[replay_at + 2 :].count("logging/setLevel") == 1
    assert methods[replay_at + 2 :].count("resources/subscribe") == 1
    assert state == [] or state[0]["session_id"] != first_session
    # The replayed initialize's answer was consumed by the proxy, never shown to the client.
    assert not any(isinstance(m, Exception) for m in changed)


async def test_server_restart_request_during_outage_is_answered(proxy_session: Any) -> None:
    async with fault_server_on() as first:
        port = first.server.port
        url = first.sse_url
        async with proxy_session(url, *SSE) as session:
            await session.set_logging_level("warning")
            assert text_of(await session.call_tool("echo", {"text": "before"})) == "before"
            initial = await first.rpc_requests("initialize")
            await anyio.to_thread.run_sync(first.server.process.terminate)
            await anyio.to_thread.run_sync(first.server.process.wait, 10)

            results: list[Any] = []
            answered_event = anyio.Event()

            async def during_outage() -> None:
                try:
                    results.append(await session.call_tool("echo", {"text": "during"}))
                except MCPError as exc:
                    results.append(exc)
                answered_event.set()

            async with anyio.create_task_group() as tg:
                sent = time.monotonic()
                tg.start_soon(during_outage)
                # The scenario, not synchronisation: the server stays down a while with the request sent.
                await anyio.sleep(1.5)
                async with fault_server_on(port) as second:
                    with anyio.fail_after(15):
                        await answered_event.wait()
                    answered = time.monotonic() - sent
                    # Up again inside the 10 s queue timeout: the request succeeds (the timeout would be an error).
                    assert not isinstance(results[0], MCPError), f"{results[0]} after {answered:.1f} s"
                    assert text_of(results[0]) == "during"
                    assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"
                    log = await second.rpc_requests()
    bodies = [entry["body"] for entry in log]
    methods = [body.get("method") for body in bodies]
    assert methods[:4] == ["initialize", "notifications/initialized", "logging/setLevel", "tools/call"]
    assert bodies[0]["params"] == initial[0]["body"]["params"]
    assert bodies[0]["id"] != initial[0]["body"]["id"]
    assert bodies[2]["params"] == {"level": "warning"}
    assert bodies[3]["params"]["arguments"] == {"text": "during"}


async def test_outage_longer_than_the_queue_timeout(proxy_session: Any) -> None:
    async with fault_server_on() as first:
        port = first.server.port
        async with proxy_session(first.sse_url, *SSE, "--queue-timeout", "2") as session:
            assert text_of(await session.call_tool("echo", {"text": "before"})) == "before"
            await anyio.to_thread.run_sync(first.server.process.terminate)
            await anyio.to_thread.run_sync(first.server.process.wait, 10)
            began = time.monotonic()
            with pytest.raises(MCPError) as caught:
                await session.call_tool("echo", {"text": "nobody home"}, read_timeout_seconds=15)
            waited = time.monotonic() - began
            assert waited > 1.5, waited
            assert "2 s" in caught.value.error.message  # the queue timeout's answer, not the client's 15 s
            # The proxy kept trying: once the server is back, the session works again.
            async with fault_server_on(port) as second:
                with anyio.fail_after(15):
                    while True:
                        try:
                            result = await session.call_tool(
                                "echo", {"text": "back"}, read_timeout_seconds=10
                            )
                            break
                        except MCPError:
                            await anyio.sleep(0.2)  # bounded polling of the condition "served again"
                assert text_of(result) == "back"
                assert (await second.rpc_requests())[0]["body"]["method"] == "initialize"


# ---- keepalive, headers, shutdown ----------------------------------------------------------------------------


async def test_keepalive_pings_go_upstream_only(fault_server: FaultControl, raw_proxy: Any) -> None:
    async with raw_proxy(fault_server.sse_url, *SSE, "--ping-interval", "1") as proxy:
        await handshake(proxy)
        entries = await fault_server.wait_for_log(
            lambda log: (
                len([e for e in log if isinstance(e["body"], dict) and e["body"].get("method") == "ping"])
                >= 2
            ),
            timeout=20,
        )
        pings = [
            e["body"] for e in entries if isinstance(e["body"], dict) and e["body"].get("method") == "ping"
        ]
        assert all(isinstance(p["id"], str) and p["id"] != "init" for p in pings)
        assert len({p["id"] for p in pings}) == len(pings)
        # The client's own ping is forwarded and answered under its own id, and is the first thing the client
        # reads: nothing reached it while the proxy kept the upstream alive.
        await proxy.send(rpc("ping", 77))
        assert await proxy.read_message(timeout=20) == {"jsonrpc": "2.0", "id": 77, "result": {}}
        assert 77 in [e["body"]["id"] for e in await fault_server.rpc_requests("ping")]


async def test_headers_on_every_get_and_post(fault_server: FaultControl, proxy_session: Any) -> None:
    args = ("--header", "Authorization: Bearer s3cret", "--header", "X-Team: blue")
    async with proxy_session(
        fault_server.sse_url, *SSE, *args, env={"ST_PROXY_HEADER_X_TRACE": "t-9"}
    ) as session:
        assert text_of(await session.call_tool("echo", {"text": "h"})) == "h"
    entries = await fault_server.requests()
    assert {e["method"] for e in entries} == {"GET", "POST"}
    for entry in entries:
        assert entry["headers"]["authorization"] == "Bearer s3cret"
        assert entry["headers"]["x-team"] == "blue"
        assert entry["headers"]["x-trace"] == "t-9"
    assert "text/event-stream" in entries[0]["headers"]["accept"]


async def test_shutdown_on_eof_sends_nothing_more(fault_server: FaultControl, raw_proxy: Any) -> None:
    async with raw_proxy(fault_server.sse_url, *SSE) as proxy:
        await handshake(proxy)
        await proxy.send(call(2, "echo", text="last"))
        assert tool_text(await read_answer(proxy, 2)) == "last"
        await fault_server.wait_for_request(
            lambda e: (e["body"] or {}).get("method") == "notifications/initialized"
        )
        before = [(e["seq"], e["method"], e["body"]) for e in await fault_server.requests()]
        await proxy.close_stdin()
        assert await proxy.wait(timeout=20) == 0
        with pytest.raises(EOFError):
            await proxy.readline(timeout=2)
    assert [(e["seq"], e["method"], e["body"]) for e in await fault_server.wait_settled()] == before
    # The GET stream was closed, so the server dropped the session.
    await fault_server.wait_for_state(lambda state: not state["sessions"])
