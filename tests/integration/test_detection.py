"""Upstream transport selection: `--transport auto` (the default) detects, `sse` / `streamable-http` force one.

Auto-detection follows the spec's fallback: POST the client's `initialize`; a 400/404/405 means "try the legacy
GET". A URL without a path tries `/mcp`, then `/sse`, then the URL itself. The detected transport and URL are
logged at info level (`profile default: using <transport> at <url>`), which these tests read from stderr.
"""

from __future__ import annotations

import re
import socket
import tempfile
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tests.integration.conftest import FaultControl, RunningServer, running_server
from tests.integration.test_streamable_relay import INIT_PARAMS, raw_handshake, rpc, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(60)]

CHOICE = re.compile(r"using (\S+) at (\S+)")


def chosen(stderr: str) -> list[tuple[str, str]]:
    """Every (transport, URL) the proxy logged as its choice."""
    return CHOICE.findall(stderr)


def _is_discover_probe(entry: dict[str, Any]) -> bool:
    return isinstance(entry["body"], dict) and entry["body"].get("method") == "server/discover"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_session(proxy_session: Any, url: str, *args: str) -> tuple[list[tuple[str, str]], str]:
    """Connect through the proxy, call `echo`, and return the logged choices and the tool's answer."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        async with proxy_session(url, *args, errlog=errlog) as session:
            answer = text_of(await session.call_tool("echo", {"text": "detected"}))
            assert session.initialize_result is not None
            assert session.initialize_result.server_info.name == "sdk-test-server"
        errlog.seek(0)
        return chosen(errlog.read()), answer


# ---- auto against real SDK servers ------------------------------------------------------------------------------


async def test_auto_finds_a_legacy_sse_server(sdk_sse_server: RunningServer, proxy_session: Any) -> None:
    choices, answer = await run_session(proxy_session, sdk_sse_server.url)
    assert answer == "detected"
    assert choices == [("sse", sdk_sse_server.url)]


async def test_auto_finds_a_streamable_server(
    sdk_streamable_server: RunningServer, proxy_session: Any
) -> None:
    choices, answer = await run_session(proxy_session, sdk_streamable_server.url)
    assert answer == "detected"
    assert choices == [("streamable-http", sdk_streamable_server.url)]


async def test_auto_finds_a_stateless_server(sdk_stateless_server: RunningServer, proxy_session: Any) -> None:
    choices, answer = await run_session(proxy_session, sdk_stateless_server.url)
    assert answer == "detected"
    assert choices == [("streamable-http", sdk_stateless_server.url)]


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_bare_url_of_a_streamable_server_tries_mcp(
    suffix: str, sdk_streamable_server: RunningServer, proxy_session: Any
) -> None:
    choices, answer = await run_session(proxy_session, sdk_streamable_server.base_url + suffix)
    assert answer == "detected"
    assert choices == [("streamable-http", sdk_streamable_server.base_url + "/mcp")]


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_bare_url_of_an_sse_server_falls_back_to_sse(
    suffix: str, sdk_sse_server: RunningServer, proxy_session: Any
) -> None:
    choices, answer = await run_session(proxy_session, sdk_sse_server.base_url + suffix)
    assert answer == "detected"
    assert choices == [("sse", sdk_sse_server.base_url + "/sse")]


async def test_bare_url_tries_mcp_then_sse_in_order(fault_server: FaultControl, proxy_session: Any) -> None:
    """The fault server speaks both; with /mcp refusing the POST (404), the proxy GETs /sse next."""
    await fault_server.configure(
        http_error={"status": 404, "http_method": "POST", "rpc_method": "initialize"}
    )
    async with proxy_session(fault_server.base_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "legacy"})) == "legacy"
    # A refused initialize may be followed by a 2026-07-28 `server/discover` probe on the same URL (era check).
    entries = [e for e in await fault_server.requests() if not _is_discover_probe(e)]
    assert [(e["method"], e["path"]) for e in entries[:2]] == [("POST", "/mcp"), ("GET", "/sse")]
    assert entries[0]["status"] == 404
    initializes = [
        e for e in entries if isinstance(e["body"], dict) and e["body"].get("method") == "initialize"
    ]
    # The queued initialize went out once more, on the transport that was found.
    assert [e["path"] for e in initializes] == ["/mcp", "/messages/"]
    assert initializes[0]["body"] == initializes[1]["body"]


async def test_url_ending_in_sse_tries_legacy_first(fault_server: FaultControl, proxy_session: Any) -> None:
    async with proxy_session(fault_server.sse_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"
    entries = await fault_server.requests()
    assert (entries[0]["method"], entries[0]["path"]) == ("GET", "/sse")
    assert all(e["path"] != "/mcp" for e in entries)


# ---- forcing a transport ----------------------------------------------------------------------------------------


async def test_forced_sse(fault_server: FaultControl, proxy_session: Any) -> None:
    async with proxy_session(fault_server.sse_url, "--transport", "sse") as session:
        assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"
    entries = await fault_server.requests()
    assert all(e["path"] != "/mcp" for e in entries)
    assert (entries[0]["method"], entries[0]["path"]) == ("GET", "/sse")


async def test_forced_streamable_http(fault_server: FaultControl, proxy_session: Any) -> None:
    async with proxy_session(fault_server.mcp_url, "--transport", "streamable-http") as session:
        assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"
    assert all(e["path"] == "/mcp" for e in await fault_server.requests())


async def test_forced_streamable_http_does_not_fall_back(
    sdk_sse_server: RunningServer, raw_proxy: Any
) -> None:
    async with raw_proxy(sdk_sse_server.url, "--transport", "streamable-http") as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        answer = await proxy.read_message(timeout=20)
        assert answer["id"] == 1 and "error" in answer
        assert "using sse" not in proxy.stderr_text()


async def test_forced_sse_does_not_fall_back(sdk_streamable_server: RunningServer, raw_proxy: Any) -> None:
    async with raw_proxy(sdk_streamable_server.url, "--transport", "sse") as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        answer = await proxy.read_message(timeout=20)
        assert answer["id"] == 1 and "error" in answer
        assert "using streamable-http" not in proxy.stderr_text()


async def test_no_transport_at_all_is_an_error_naming_what_was_tried(
    fault_server: FaultControl, raw_proxy: Any
) -> None:
    async with raw_proxy(fault_server.base_url + "/nothing-here") as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        answer = await proxy.read_message(timeout=10)
    assert answer["id"] == 1 and "error" in answer
    paths = {(e["method"], e["path"]) for e in await fault_server.requests()}
    assert paths == {("POST", "/nothing-here"), ("GET", "/nothing-here")}


# ---- the queued initialize and what follows it ------------------------------------------------------------------


@pytest.mark.parametrize("url_kind", ["mcp", "bare-to-sse"])
async def test_detection_never_loses_the_queued_messages(
    url_kind: str, fault_server: FaultControl, raw_proxy: Any
) -> None:
    """initialize and two pings written at once while detection is slow: each sent and answered exactly once."""
    if url_kind == "mcp":
        url = fault_server.mcp_url
        await fault_server.configure(post_delay={"seconds": 1.0, "rpc_method": "initialize"})
    else:
        url = fault_server.base_url
        await fault_server.configure(
            http_error={"status": 405, "http_method": "POST", "rpc_method": "initialize"},
            post_delay={"seconds": 1.0, "rpc_method": "initialize"},
        )
    async with raw_proxy(url) as proxy:
        # Pings are the only requests a client may send before the initialize result (lifecycle).
        await proxy.send(rpc("initialize", 0, **INIT_PARAMS))
        await proxy.send(rpc("ping", "early-1"))
        await proxy.send(rpc("ping", "early-2"))
        answers: dict[Any, Any] = {}
        with anyio.fail_after(15):
            while len(answers) < 3:
                message = await proxy.read_message(timeout=15)
                answers[message["id"]] = message
        assert answers[0]["result"]["serverInfo"]["name"] == "fault-server"
        assert answers["early-1"]["result"] == {} and answers["early-2"]["result"] == {}
        await proxy.send(rpc("notifications/initialized"))
        await proxy.send(rpc("tools/call", 2, name="echo", arguments={"text": "after detection"}))
        answer = await proxy.read_message(timeout=10)
        assert answer["result"]["content"][0]["text"] == "after detection"
    served = [
        e["body"]
        for e in await fault_server.requests()
        if isinstance(e["body"], dict) and "method" in e["body"] and e["status"] in (200, 202)
    ]
    assert [body["method"] for body in served].count("initialize") == 1
    assert sorted(str(body.get("id")) for body in served if body["method"] == "ping") == [
        "early-1",
        "early-2",
    ]
    assert served[-2:] == [
        rpc("notifications/initialized"),
        rpc("tools/call", 2, name="echo", arguments={"text": "after detection"}),
    ]


async def test_dead_port_is_not_a_verdict(raw_proxy: Any) -> None:
    """Nothing listens: initialize gets an error once the queue timeout ends. Then a server starts on that port:
    a new initialize works, and detection still prefers Streamable HTTP (the refused connection did not make it
    settle on SSE)."""
    port = free_port()
    async with raw_proxy(f"http://127.0.0.1:{port}", "--queue-timeout", "1") as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        refused = await proxy.read_message(timeout=10)
        assert refused["id"] == 1 and refused["error"]["message"]
        with running_server(
            "tests.servers.sdk_server", "/mcp", "--port", str(port), "--transport", "streamable"
        ):
            result = await raw_handshake(proxy, request_id=2)
            assert result["serverInfo"]["name"] == "sdk-test-server"
            await proxy.send(rpc("tools/call", 3, name="echo", arguments={"text": "late"}))
            answer = await proxy.read_message(timeout=10)
            assert answer["result"]["content"][0]["text"] == "late"
            assert ("streamable-http", f"http://127.0.0.1:{port}/mcp") in chosen(proxy.stderr_text())


async def test_dead_port_then_legacy_server(raw_proxy: Any) -> None:
    port = free_port()
    async with raw_proxy(f"http://127.0.0.1:{port}", "--queue-timeout", "1") as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        assert "error" in await proxy.read_message(timeout=10)
        with running_server("tests.servers.sdk_server", "/sse", "--port", str(port), "--transport", "sse"):
            await raw_handshake(proxy, request_id=2)
            await proxy.send(rpc("tools/call", 3, name="echo", arguments={"text": "late"}))
            answer = await proxy.read_message(timeout=10)
            assert answer["result"]["content"][0]["text"] == "late"
            assert ("sse", f"http://127.0.0.1:{port}/sse") in chosen(proxy.stderr_text())


async def test_dead_port_through_the_sdk_client(proxy_session: Any) -> None:
    port = free_port()
    async with proxy_session(f"http://127.0.0.1:{port}/mcp", "--queue-timeout", "1", era="none") as session:
        with anyio.fail_after(10), pytest.raises(MCPError) as refused:
            await session.initialize()
        assert str(port) in refused.value.error.message or "connect" in refused.value.error.message.lower()


async def test_bare_url_skips_a_non_mcp_answer_at_mcp(fault_server: FaultControl, proxy_session: Any) -> None:
    """/mcp answers the POST with 200 text/plain (some other web page): not MCP, so /sse is tried."""
    await fault_server.configure(
        http_error={
            "status": 200,
            "http_method": "POST",
            "rpc_method": "initialize",
            "body": "<html>hi</html>",
        }
    )
    async with proxy_session(fault_server.base_url) as session:
        assert text_of(await session.call_tool("echo", {"text": "x"})) == "x"
    assert any(e["method"] == "GET" and e["path"] == "/sse" for e in await fault_server.requests())


@pytest.mark.parametrize("status", [401, 500, 503])
async def test_bare_url_does_not_fall_back_on_other_statuses(
    status: int, fault_server: FaultControl, raw_proxy: Any
) -> None:
    """Only 400/404/405 mean "not Streamable HTTP": a 401 or a 5xx at /mcp is an answer about this server."""
    await fault_server.configure(
        http_error={"status": status, "http_method": "POST", "rpc_method": "initialize"}
    )
    async with raw_proxy(fault_server.base_url) as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        answer = await proxy.read_message(timeout=20)
        assert answer["id"] == 1
        if status == 503:
            # "Unavailable" may pass: initialize is retried with backoff within --queue-timeout.
            assert "result" in answer or str(status) in answer["error"]["message"]
        else:
            assert str(status) in answer["error"]["message"]
    assert all(e["path"] != "/sse" for e in await fault_server.requests())
