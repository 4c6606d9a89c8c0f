"""2026-07-28 Streamable HTTP request metadata and broken streams, through the proxy to a recording server.

A modern client (raw JSON-RPC lines on the proxy's stdin) talks through the proxy to
`tests.servers.strict_modern_server`, a strict 2026-07-28-only server that records every request's headers,
checks them against the body (400/-32020 on a mismatch) and breaks response streams on demand. The tests read
the headers the server received: `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` (plain or Base64 sentinel),
`Mcp-Param-*` from `x-mcp-header` annotations; tools with invalid annotations hidden from `tools/list`; the
re-list and retry after a HeaderMismatch; cancellation by closing the stream; a broken stream re-issued once for
an idempotent request and answered with an error for a `tools/call`; the era the `server/discover` probe's answer
implies; a handshake client bridged to this server (HandshakeToModern) sending the same modern headers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx2
import pytest

from tests.integration.conftest import RawProxy, RunningServer, open_raw_proxy, running_server
from tests.servers.strict_modern_server import INVALID_TOOLS, VALID_TOOLS

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(60)]

VERSION = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
READ_TIMEOUT = 15.0
MODERN_RESERVED_CODES = range(-32099, -32019)


def modern_meta(**extra: Any) -> dict[str, Any]:
    return {
        VERSION_KEY: VERSION,
        CAPABILITIES_KEY: {},
        CLIENT_INFO_KEY: {"name": "raw-modern-client", "version": "0"},
        **extra,
    }


def request(msg_id: int | str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": msg_id,
        "method": method,
        "params": {**(params or {}), "_meta": modern_meta()},
    }


def sentinel(value: str) -> str:
    return "=?base64?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


class Recorder:
    """Control API of the recording server."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.client = httpx2.AsyncClient(base_url=server.base_url, timeout=10.0)

    @property
    def url(self) -> str:
        return self.server.url

    async def reset(self) -> None:
        (await self.client.post("/_control/reset")).raise_for_status()

    async def configure(self, **switches: Any) -> None:
        (await self.client.post("/_control", json=switches)).raise_for_status()

    async def log(self) -> dict[str, Any]:
        response = await self.client.get("/_control/log")
        response.raise_for_status()
        return dict(response.json())

    async def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        entries = (await self.log())["requests"]
        return [e for e in entries if method is None or (e["body"] or {}).get("method") == method]

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The log once `predicate` holds for it (the log lives in another process: poll with a deadline)."""
        with anyio.fail_after(timeout):
            while True:
                log = await self.log()
                if predicate(log):
                    return log
                await anyio.sleep(0.05)


@pytest.fixture(scope="module")
def recording_server() -> Iterator[RunningServer]:
    with running_server("tests.servers.strict_modern_server", "/mcp") as server:
        yield server


@pytest.fixture
async def recorder(recording_server: RunningServer) -> AsyncIterator[Recorder]:
    control = Recorder(recording_server)
    await control.reset()
    try:
        yield control
    finally:
        await control.client.aclose()


async def call(
    proxy: RawProxy,
    msg_id: int | str,
    method: str,
    params: dict[str, Any] | None = None,
    timeout: float = READ_TIMEOUT,
) -> Any:
    """Send one modern request and read until its response (notifications before it are skipped)."""
    await proxy.send(request(msg_id, method, params))
    response, _ = await proxy.read_until(lambda m: m.get("id") == msg_id and "method" not in m, timeout)
    return response


def tool_headers(response: dict[str, Any]) -> dict[str, str]:
    assert "result" in response, response
    return dict(json.loads(response["result"]["content"][0]["text"]))


# ---- headers on every request ----------------------------------------------------------------------------------


async def test_version_and_method_headers_on_every_request(recorder: Recorder) -> None:
    async with open_raw_proxy(recorder.url) as proxy:
        discovered = await call(proxy, 1, "server/discover")
        assert discovered["result"]["supportedVersions"] == [VERSION]
        await call(proxy, 2, "tools/list")
        await call(proxy, 3, "tools/call", {"name": "headers", "arguments": {"text": "x"}})
        await call(proxy, 4, "resources/read", {"uri": "test://plain"})
        await call(proxy, 5, "prompts/get", {"name": "greeting"})
    entries = await recorder.requests()
    assert entries, "the server saw nothing"
    for entry in entries:
        body, headers = entry["body"], entry["headers"]
        assert body["method"] not in ("initialize", "notifications/initialized"), "a handshake was injected"
        assert headers["mcp-protocol-version"] == body["params"]["_meta"][VERSION_KEY] == VERSION
        assert headers["mcp-method"] == body["method"]
        assert "mcp-session-id" not in headers
        assert "application/json" in headers["accept"] and "text/event-stream" in headers["accept"]
        assert entry["status"] == 200, entry
    by_method = {e["body"]["method"]: e["headers"] for e in entries}
    assert by_method["tools/call"]["mcp-name"] == "headers"
    assert by_method["resources/read"]["mcp-name"] == "test://plain"
    assert by_method["prompts/get"]["mcp-name"] == "greeting"
    assert "mcp-name" not in by_method["tools/list"] and "mcp-name" not in by_method["server/discover"]


@pytest.mark.parametrize(
    ("method", "key", "value"),
    [
        ("tools/call", "name", "plain-name_1.0"),
        ("tools/call", "name", "héllo wörld"),
        ("tools/call", "name", "工具"),
        ("tools/call", "name", " padded "),
        ("tools/call", "name", "trailing "),
        ("tools/call", "name", "tab\tinside"),
        ("tools/call", "name", "=?base64?aGk=?="),
        ("tools/call", "name", "inner space"),
        ("resources/read", "uri", "file:///tmp/ünïcode.txt"),
        ("prompts/get", "name", "grüße"),
    ],
    ids=[
        "plain",
        "latin1",
        "cjk",
        "padded",
        "trailing-space",
        "tab",
        "sentinel-lookalike",
        "inner-space",
        "uri-non-ascii",
        "prompt-non-ascii",
    ],
)
async def test_mcp_name_encoding(recorder: Recorder, method: str, key: str, value: str) -> None:
    plain = value.isascii() and value == value.strip() and "\t" not in value and not value.startswith("=?")
    expected = value if plain else sentinel(value)
    async with open_raw_proxy(recorder.url) as proxy:
        response = await call(
            proxy, 1, method, {key: value, **({"arguments": {}} if method == "tools/call" else {})}
        )
    assert "result" in response, response
    [entry] = await recorder.requests(method)
    assert entry["headers"]["mcp-name"] == expected
    assert entry["status"] == 200


# ---- x-mcp-header annotations ----------------------------------------------------------------------------------


async def test_invalid_annotations_hidden_on_every_page(recorder: Recorder) -> None:
    async with open_raw_proxy(recorder.url) as proxy:
        first = await call(proxy, 1, "tools/list")
        second = await call(proxy, 2, "tools/list", {"cursor": first["result"]["nextCursor"]})
    names = [t["name"] for t in first["result"]["tools"]] + [t["name"] for t in second["result"]["tools"]]
    assert sorted(names) == sorted(VALID_TOOLS)
    assert not set(names) & set(INVALID_TOOLS)
    assert first["result"]["nextCursor"] == "page-2"


async def test_param_headers_from_annotations(recorder: Recorder) -> None:
    arguments = {"region": "eu-west", "count": 42, "flag": False, "scope": {"deep": "ünder"}, "note": "free"}
    async with open_raw_proxy(recorder.url) as proxy:
        first = await call(proxy, 1, "tools/list")
        await call(proxy, 2, "tools/list", {"cursor": first["result"]["nextCursor"]})
        annotated = tool_headers(
            await call(proxy, 3, "tools/call", {"name": "annotated", "arguments": arguments})
        )
        late = tool_headers(
            await call(proxy, 4, "tools/call", {"name": "annotated_late", "arguments": {"tenant": " t "}})
        )
        partial = tool_headers(
            await call(proxy, 5, "tools/call", {"name": "annotated", "arguments": {"count": -7}})
        )
    assert annotated["mcp-param-region"] == "eu-west"
    assert annotated["mcp-param-count"] == "42"
    assert annotated["mcp-param-flag"] == "false"
    assert annotated["mcp-param-deep"] == sentinel("ünder")
    assert not any(name.endswith("-note") for name in annotated)
    assert late["mcp-param-tenant"] == sentinel(" t "), "a tool from the second page got no header"
    assert partial["mcp-param-count"] == "-7"
    assert not {"mcp-param-region", "mcp-param-flag", "mcp-param-deep"} & set(partial), (
        "absent args send no header"
    )
    assert len(await recorder.requests("tools/call")) == 3, "no call needed a retry"


async def test_header_mismatch_relists_and_retries_once(recorder: Recorder) -> None:
    async with open_raw_proxy(recorder.url) as proxy:
        # Never listed: the proxy cannot know the annotations, the server answers -32020.
        response = await call(
            proxy, 1, "tools/call", {"name": "annotated", "arguments": {"region": "us", "flag": True}}
        )
    headers = tool_headers(response)
    assert headers["mcp-param-region"] == "us" and headers["mcp-param-flag"] == "true"
    # The proxy's own `server/discover` probe may come first: a tools/call may have side effects.
    methods = [
        (e["body"]["method"], e["status"])
        for e in await recorder.requests()
        if e["body"]["method"] != "server/discover"
    ]
    assert methods[0] == ("tools/call", 400)
    assert ("tools/list", 200) in methods[1:-1]
    assert methods[-1] == ("tools/call", 200)
    assert [m for m, _ in methods].count("tools/call") == 2


async def test_persistent_header_mismatch_is_relayed_after_one_retry(recorder: Recorder) -> None:
    await recorder.configure(mismatch={"tools/call": -1})
    async with open_raw_proxy(recorder.url) as proxy:
        response = await call(proxy, 1, "tools/call", {"name": "headers", "arguments": {}})
    assert response["error"]["code"] == -32020, response
    methods = [e["body"]["method"] for e in await recorder.requests()]
    assert methods.count("tools/call") == 2, methods
    assert "tools/list" in methods


# ---- cancellation and broken streams -----------------------------------------------------------------------------


async def test_cancellation_closes_the_stream_and_is_not_posted(recorder: Recorder) -> None:
    async with open_raw_proxy(recorder.url) as proxy:
        await proxy.send(request(7, "tools/call", {"name": "wait", "arguments": {}}))
        await recorder.wait_for(
            lambda log: any((e["body"] or {}).get("method") == "tools/call" for e in log["requests"])
        )  # not just any request with an id: the proxy's own discovery has one too, and a call cancelled
        # before it is posted has no stream to close
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}})
        log = await recorder.wait_for(lambda log: bool(log["disconnects"]), timeout=5.0)
        # Nothing more for id 7; the proxy still answers the next request.
        follow = await call(proxy, 8, "tools/call", {"name": "headers", "arguments": {}})
        assert "result" in follow
        with anyio.move_on_after(0.5):
            stray = await proxy.read_message(1.0)
            pytest.fail(f"unexpected message after the cancellation: {stray}")
    assert len(log["disconnects"]) == 1
    assert not await recorder.requests("notifications/cancelled"), "the cancellation was POSTed"


@pytest.mark.parametrize("mode", ["cut", "end"])
@pytest.mark.parametrize(
    ("method", "params"),
    [("tools/list", {}), ("resources/read", {"uri": "test://again"}), ("prompts/get", {"name": "again"})],
    ids=["tools-list", "resources-read", "prompts-get"],
)
async def test_broken_stream_reissues_idempotent_request_once(
    recorder: Recorder, mode: str, method: str, params: dict[str, Any]
) -> None:
    await recorder.configure(**{"break": {method: 1}, "break_mode": mode})
    async with open_raw_proxy(recorder.url) as proxy:
        response = await call(proxy, "client-id-1", method, params)
    assert "result" in response, response
    assert response["id"] == "client-id-1"
    attempts = await recorder.requests(method)
    assert [a["status"] for a in attempts] == ["broken", 200]
    ids = [a["body"]["id"] for a in attempts]
    assert ids[0] != ids[1], "the re-issued request reused the lost id"


async def test_broken_stream_twice_gives_an_error(recorder: Recorder) -> None:
    await recorder.configure(**{"break": {"tools/list": 2}, "break_mode": "cut"})
    async with open_raw_proxy(recorder.url) as proxy:
        response = await call(proxy, 1, "tools/list", timeout=5.0)
        again = await call(proxy, 2, "tools/list")
    assert "error" in response, response
    assert response["error"]["code"] not in MODERN_RESERVED_CODES
    assert len(await recorder.requests("tools/list")) == 3  # two for the first request, one for the second
    assert "result" in again


@pytest.mark.parametrize("mode", ["cut", "end"])
async def test_broken_stream_for_tools_call_is_an_error_not_a_rerun(recorder: Recorder, mode: str) -> None:
    await recorder.configure(**{"break": {"tools/call": 1}, "break_mode": mode})
    async with open_raw_proxy(recorder.url) as proxy:
        response = await call(proxy, 1, "tools/call", {"name": "headers", "arguments": {}})
        after = await call(proxy, 2, "tools/call", {"name": "headers", "arguments": {}})
    assert response["id"] == 1
    assert "error" in response, response
    code = response["error"]["code"]
    assert code not in MODERN_RESERVED_CODES, "a proxy error must not look like a modern protocol error"
    assert "result" in after
    assert len(await recorder.requests("tools/call")) == 2, "the broken tools/call was sent again"


# ---- era probe outcomes and the handshake bridge ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("discover", "era"),
    [("modern", "modern"), ("handshake-only", "handshake"), ("error-200", "handshake")],
)
async def test_probe_outcome_decides_the_era(recorder: Recorder, discover: str, era: str) -> None:
    """The client's `server/discover` is the probe: a modern DiscoverResult keeps the relay stateless; a
    DiscoverResult naming only handshake versions, or a 200 with a non-modern error, sends the proxy to
    `initialize` (which this server refuses, so the client gets an error, promptly)."""
    await recorder.configure(discover=discover)
    async with open_raw_proxy(recorder.url) as proxy:
        response = await call(proxy, 1, "server/discover", timeout=5.0)
    methods = [e["body"]["method"] for e in await recorder.requests()]
    assert methods[0] == "server/discover"
    if era == "modern":
        assert response["result"]["supportedVersions"] == [VERSION]
        assert "initialize" not in methods
    else:
        assert "initialize" in methods, methods
        assert "error" in response, response
        assert response["error"]["code"] not in MODERN_RESERVED_CODES


async def test_handshake_client_bridge_sends_modern_headers(recorder: Recorder) -> None:
    """A handshake client through HandshakeToModern: every upstream request is modern, with the metadata
    headers, and `Mcp-Param-*` from the annotations of every listed page."""
    init = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    }
    async with open_raw_proxy(recorder.url) as proxy:
        await proxy.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        initialized, _ = await proxy.read_until(lambda m: m.get("id") == 1, READ_TIMEOUT)
        assert initialized["result"]["serverInfo"]["name"] == "strict-modern-server"
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed: list[str] = []
        cursor: str | None = None
        for msg_id in (2, 3):
            params = {"cursor": cursor} if cursor else {}
            await proxy.send({"jsonrpc": "2.0", "id": msg_id, "method": "tools/list", "params": params})
            page, _ = await proxy.read_until(lambda m, i=msg_id: m.get("id") == i, READ_TIMEOUT)
            listed += [tool["name"] for tool in page["result"]["tools"]]
            cursor = page["result"].get("nextCursor")
        arguments = {"name": "annotated_late", "arguments": {"tenant": "ümlaut"}}
        await proxy.send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": arguments})
        called, _ = await proxy.read_until(lambda m: m.get("id") == 4, READ_TIMEOUT)
    assert sorted(listed) == sorted(VALID_TOOLS)
    assert tool_headers(called)["mcp-param-tenant"] == sentinel("ümlaut")
    modern = [e for e in await recorder.requests() if e["status"] == 200]
    assert {e["body"]["method"] for e in modern} >= {"server/discover", "tools/list", "tools/call"}
    for entry in modern:
        assert entry["headers"]["mcp-protocol-version"] == VERSION
        assert entry["headers"]["mcp-method"] == entry["body"]["method"]
