"""The era matrix: clients of both eras through the proxy to servers of both eras, with real peers.

Client eras: the SDK 2.3.0 client in the handshake era (`initialize`) and in the 2026-07-28 era
(`server/discover`, `mcp.client.Client` driving `input_required` itself), plus raw JSON-RPC lines where a test
needs the exact wire. Servers (`CELLS`):

- `sdk-streamable`: the SDK server over Streamable HTTP with sessions (serves both eras);
- `sdk-stateless`: the same, stateless;
- `sdk-sse`: the SDK server over legacy HTTP+SSE (handshake era only: a modern client is bridged);
- `modern-only`: the SDK server behind a filter refusing the handshake era (a handshake client is bridged);
- `forced-handshake`: `sdk-streamable` with `--protocol handshake` (a modern client is bridged).

Which path the proxy takes in each cell is `relay` (same era end to end) or `bridge` (`ModernToHandshake` or
`HandshakeToModern`); the scenarios assert what the client sees, and the bridge-only ones what the server saw.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.integration.clients import elicitation_callback, list_roots_callback, sampling_callback
from tests.integration.conftest import (
    REPO_ROOT,
    FaultControl,
    RawProxy,
    RunningServer,
    open_proxy_session,
    open_raw_proxy,
    proxy_command,
    proxy_environment,
    running_server,
)
from tests.servers.sdk_server import STATIC_RESOURCE_TEXT, SUBSCRIBABLE_RESOURCE_URI, big_text

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(60)]

MODERN = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"
#: The SDK client gives up on server/discover after 10 s: being answered before that is the behaviour tested.
#: (How soon is a figure for benchmarks/, not an assertion on a loaded machine.)
DISCOVER_BUDGET = 10.0
READ_TIMEOUT = 30.0
TEN_MB = 10 * 1024 * 1024
CONCURRENT_CALLS = 50
MODERN_RESERVED_CODES = range(-32099, -32019)
HANDSHAKE_INIT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "raw", "version": "0"},
}


@dataclass(frozen=True)
class Cell:
    """One server column of the matrix: how to start it, how to start the proxy, what path each era takes."""

    name: str
    module: str
    path: str
    server_args: tuple[str, ...]
    proxy_args: tuple[str, ...]
    modern_path: str  # "relay" | "bridge"
    handshake_path: str
    has_back_channel: bool  # the handshake-era server can send requests mid-call


CELLS = {
    cell.name: cell
    for cell in (
        Cell(
            "sdk-streamable",
            "tests.servers.sdk_server",
            "/mcp",
            ("--transport", "streamable"),
            (),
            "relay",
            "relay",
            True,
        ),
        Cell(
            "sdk-stateless",
            "tests.servers.sdk_server",
            "/mcp",
            ("--transport", "stateless"),
            (),
            "relay",
            "relay",
            False,
        ),
        Cell(
            "sdk-sse", "tests.servers.sdk_server", "/sse", ("--transport", "sse"), (), "bridge", "relay", True
        ),
        Cell("modern-only", "tests.servers.modern_only_server", "/mcp", (), (), "relay", "bridge", True),
        Cell(
            "forced-handshake",
            "tests.servers.sdk_server",
            "/mcp",
            ("--transport", "streamable"),
            ("--protocol", "handshake"),
            "bridge",
            "relay",
            True,
        ),
    )
}
ALL = list(CELLS)
MODERN_BRIDGED = [name for name, cell in CELLS.items() if cell.modern_path == "bridge"]
HANDSHAKE_BACK_CHANNEL = [name for name, cell in CELLS.items() if cell.has_back_channel]


class Servers:
    """Starts each cell's server on first use and keeps it for the module."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._running: dict[str, RunningServer] = {}

    def url(self, cell: Cell) -> str:
        if cell.name not in self._running:
            self._running[cell.name] = self._stack.enter_context(
                running_server(cell.module, cell.path, *cell.server_args)
            )
        return self._running[cell.name].url


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        yield Servers(stack)


# ---- clients -------------------------------------------------------------------------------------------------


CALLBACKS: dict[str, Any] = {
    "sampling_callback": sampling_callback,
    "elicitation_callback": elicitation_callback,
    "list_roots_callback": list_roots_callback,
}


@asynccontextmanager
async def modern_client(url: str, *proxy_args: str, **client_options: Any) -> AsyncIterator[Client]:
    """The SDK's high-level `Client` over the proxy's stdio, connected in the 2026-07-28 era (asserted)."""
    params = StdioServerParameters(
        command=sys.executable,
        args=proxy_command(url, *proxy_args)[1:],
        env=proxy_environment(None),
        cwd=REPO_ROOT,
    )
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        try:
            # The connect is bounded by the read timeout (the SDK's discover probe has its own 10 s); a cancel
            # scope around `__aenter__` alone would leave the client's task groups outside it.
            async with Client(
                stdio_client(params, errlog=errlog),
                mode="auto",
                read_timeout_seconds=READ_TIMEOUT,
                cache=None,
                **client_options,
            ) as client:
                assert client.protocol_version == MODERN, "the SDK fell back to the handshake era"
                yield client
        except BaseException:
            errlog.seek(0)
            sys.stderr.write(f"--- proxy stderr ---\n{errlog.read()[-20000:]}\n")
            raise


def modern_meta(capabilities: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        VERSION_KEY: MODERN,
        CAPABILITIES_KEY: capabilities if capabilities is not None else {},
        CLIENT_INFO_KEY: {"name": "raw-modern-client", "version": "0"},
        **extra,
    }


def modern_request(
    msg_id: int | str, method: str, params: dict[str, Any] | None = None, **meta: Any
) -> dict[str, Any]:
    body = dict(params or {})
    body["_meta"] = {**modern_meta(), **meta}
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": body}


async def response_to(
    proxy: RawProxy, msg_id: Any, timeout: float = 15.0
) -> tuple[dict[str, Any], list[Any]]:
    """Read until the response to `msg_id`; returns it and the messages seen before it."""
    return await proxy.read_until(lambda m: m.get("id") == msg_id and "method" not in m, timeout)


async def touch_until_updated(proxy: RawProxy) -> dict[str, Any]:
    """Call `touch` until a `notifications/resources/updated` arrives (the bridge opens its listen stream in
    the background, so the first touches may precede it)."""
    touch = {"name": "touch", "arguments": {}}
    for attempt in range(20):
        msg_id = 100 + attempt
        await proxy.send({"jsonrpc": "2.0", "id": msg_id, "method": "tools/call", "params": touch})
        _, seen = await response_to(proxy, msg_id)
        seen += await drain(proxy, 0.25)
        updated = [m for m in seen if m.get("method") == "notifications/resources/updated"]
        if updated:
            return dict(updated[0])
    raise AssertionError("no notifications/resources/updated after 20 touches")


async def drain(proxy: RawProxy, seconds: float) -> list[Any]:
    """Every message the proxy writes in the next `seconds`."""
    seen: list[Any] = []
    with anyio.move_on_after(seconds):
        while True:
            seen.append(await proxy.read_message(seconds + 1.0))
    return seen


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def cell_id(name: str) -> str:
    return name


# ---- modern client: discovery ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_modern_discover_is_prompt_and_complete(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    async with open_proxy_session(servers.url(cell), *cell.proxy_args, era="none", **CALLBACKS) as session:
        started = time.monotonic()
        raw = await session.send_discover(MODERN)
        elapsed = time.monotonic() - started
        adopted = await session.discover()
    assert elapsed < DISCOVER_BUDGET, f"server/discover took {elapsed:.1f} s"
    assert raw["resultType"] == "complete"
    assert MODERN in raw["supportedVersions"]
    assert isinstance(raw["capabilities"], dict) and "tools" in raw["capabilities"]
    assert isinstance(raw["ttlMs"], int) and raw["ttlMs"] >= 0
    assert raw["cacheScope"] in ("public", "private")
    assert raw["_meta"][SERVER_INFO_KEY]["name"] == "sdk-test-server"
    assert "tasks" not in raw["capabilities"]
    assert adopted.supported_versions == raw["supportedVersions"]
    assert session.protocol_version == MODERN


async def test_modern_discover_answered_when_upstream_is_down() -> None:
    with running_server("tests.servers.sdk_server", "/mcp", "--transport", "streamable") as server:
        url = server.url
    # The server is gone: the probe must still be answered (with an error), not left to time out.
    async with open_raw_proxy(url, "--queue-timeout", "2") as proxy:
        started = time.monotonic()
        await proxy.send(modern_request(1, "server/discover"))
        response, _ = await response_to(proxy, 1, timeout=DISCOVER_BUDGET)
    assert time.monotonic() - started < DISCOVER_BUDGET
    assert "error" in response
    assert response["error"]["code"] not in MODERN_RESERVED_CODES, "an upstream failure must not look modern"


# ---- modern client: the common scenarios ----------------------------------------------------------------------


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_modern_tools_resources_prompts_progress(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with modern_client(servers.url(cell), *cell.proxy_args) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "add", "slow", "sample", "big", "touch"} <= tools
        assert text_of(await client.call_tool("echo", {"text": "héllo"})) == "héllo"
        assert text_of(await client.call_tool("add", {"a": 2, "b": 40})) == "42"
        slow = await client.call_tool("slow", {"seconds": 0.4, "steps": 4}, progress_callback=on_progress)
        assert text_of(slow) == "slept 0.4"
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"test://static", SUBSCRIBABLE_RESOURCE_URI} <= resources
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        assert "test://item/{n}" in templates
        static = await client.read_resource("test://static")
        assert static.contents[0].text == STATIC_RESOURCE_TEXT  # type: ignore[union-attr]
        item = await client.read_resource("test://item/7")
        assert item.contents[0].text == "item 7"  # type: ignore[union-attr]
        prompts = [p.name for p in (await client.list_prompts()).prompts]
        assert "greet" in prompts
        greeting = await client.get_prompt("greet", {"name": "Ada"})
        assert greeting.messages[0].content.text == "Hello, Ada!"  # type: ignore[union-attr]
    assert progress == [1, 2, 3, 4]


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_modern_results_have_modern_shape(servers: Servers, cell_name: str) -> None:
    """Raw results: resultType everywhere, cache fields on cacheable results, modern not-found code."""
    cell = CELLS[cell_name]
    async with open_raw_proxy(servers.url(cell), *cell.proxy_args) as proxy:
        await proxy.send(modern_request(1, "server/discover"))
        await response_to(proxy, 1)
        for msg_id, method, params in [
            (2, "tools/list", {}),
            (3, "resources/list", {}),
            (4, "resources/read", {"uri": "test://static"}),
            (5, "prompts/list", {}),
        ]:
            await proxy.send(modern_request(msg_id, method, params))
            response, _ = await response_to(proxy, msg_id)
            result = response["result"]
            assert result["resultType"] == "complete", (method, result)
            assert isinstance(result["ttlMs"], int) and result["ttlMs"] >= 0, (method, result)
            assert result["cacheScope"] in ("public", "private"), (method, result)
        await proxy.send(modern_request(6, "tools/call", {"name": "echo", "arguments": {"text": "x"}}))
        called, _ = await response_to(proxy, 6)
        assert called["result"]["resultType"] == "complete"
        await proxy.send(modern_request(7, "resources/read", {"uri": "test://missing"}))
        missing, _ = await response_to(proxy, 7)
        assert missing["error"]["code"] == -32602, missing  # 2026-07-28: not -32002


SSE_ATTRIBUTION_LIMIT = pytest.mark.xfail(
    strict=True,
    reason="LIMITATION: over legacy SSE a server request carries nothing that names the call it belongs to "
    "(Streamable HTTP sends it on that call's stream); the bridge ties it to the oldest call not already "
    "waiting for input, which is the wrong one when an unrelated call started earlier",
)


def sse_bridged_xfail(mark: pytest.MarkDecorator) -> list[Any]:
    """`ALL` as params, with `mark` on the cell where a modern client is bridged over legacy SSE."""
    return [pytest.param(name, marks=mark) if name == "sdk-sse" else name for name in ALL]


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_modern_logging_follows_log_level(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    received: list[str] = []
    arrived = anyio.Event()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        received.append(str(params.data))
        if params.data == "with-debug-level":
            arrived.set()

    async with modern_client(servers.url(cell), *cell.proxy_args, logging_callback=on_log) as client:
        await client.call_tool("log", {"level": "info", "message": "no-level"})
        await client.call_tool(
            "log", {"level": "info", "message": "below-threshold"}, meta={LOG_LEVEL_KEY: "error"}
        )
        await client.call_tool(
            "log", {"level": "info", "message": "with-debug-level"}, meta={LOG_LEVEL_KEY: "debug"}
        )
        with anyio.fail_after(5):
            await arrived.wait()
    # Messages arrive in order on stdout: the last one is a barrier for the two that must not come.
    assert received == ["with-debug-level"]


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_modern_fifty_concurrent_calls_and_ten_mb_result(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    results: dict[int, str] = {}
    async with modern_client(servers.url(cell), *cell.proxy_args) as client:

        async def one(index: int) -> None:
            results[index] = text_of(await client.call_tool("echo", {"text": f"call-{index}"}))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for index in range(CONCURRENT_CALLS):
                    tg.start_soon(one, index)
        big = await client.call_tool("big", {"size": TEN_MB})
    assert results == {index: f"call-{index}" for index in range(CONCURRENT_CALLS)}
    text = text_of(big)
    assert len(text) == TEN_MB and text == big_text(TEN_MB)


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_modern_cancellation(servers: Servers, cell_name: str) -> None:
    """The client cancels a call in flight: nothing more for that id, and the proxy goes on serving."""
    cell = CELLS[cell_name]
    async with open_raw_proxy(servers.url(cell), *cell.proxy_args) as proxy:
        await proxy.send(modern_request(1, "server/discover"))
        await response_to(proxy, 1)
        await proxy.send(
            modern_request(
                2,
                "tools/call",
                {"name": "slow", "arguments": {"seconds": 1.5, "steps": 6}},
                progressToken="p",
            )
        )
        await proxy.read_until(lambda m: m.get("method") == "notifications/progress", 10)
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}})
        await proxy.send(modern_request(3, "tools/call", {"name": "echo", "arguments": {"text": "after"}}))
        after, _ = await response_to(proxy, 3)
        assert after["result"]["content"][0]["text"] == "after"
        later = await drain(proxy, 2.0)  # the slow call would have ended by now
    assert not [m for m in later if m.get("id") == 2], later


@pytest.mark.parametrize("transport", ["sse", "streamable"])
async def test_modern_cancellation_reaches_handshake_server(
    fault_server: FaultControl, transport: str
) -> None:
    url = fault_server.sse_url if transport == "sse" else fault_server.mcp_url
    async with open_raw_proxy(
        url, "--transport", "sse" if transport == "sse" else "streamable-http"
    ) as proxy:
        await proxy.send(modern_request(1, "server/discover"))
        await response_to(proxy, 1)
        await proxy.send(
            modern_request(
                2, "tools/call", {"name": "slow", "arguments": {"seconds": 5, "steps": 10}}, progressToken="p"
            )
        )
        await proxy.read_until(lambda m: m.get("method") == "notifications/progress", 10)
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}})
        state = await fault_server.wait_for_state(
            lambda state: any(s["cancelled"] for s in state["sessions"])
        )
        sessions = state["sessions"]
    [session] = [s for s in sessions if s["cancelled"]]
    assert len(session["cancelled"]) == 1


# ---- modern client: sampling, elicitation, roots (input_required) ---------------------------------------------


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_modern_sampling_elicitation_roots_mid_call(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    async with modern_client(servers.url(cell), *cell.proxy_args, **CALLBACKS) as client:
        assert text_of(await client.call_tool("sample", {"prompt": "hi"})) == "sampled:hi"
        assert json.loads(text_of(await client.call_tool("elicit", {"message": "ok?"}))) == {
            "action": "accept",
            "content": {"answer": "yes"},
        }
        assert json.loads(text_of(await client.call_tool("list_roots", {}))) == ["file:///workspace"]


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_modern_input_required_round_by_hand(servers: Servers, cell_name: str) -> None:
    """`allow_input_required=True`: the first answer asks for sampling; the retry (new id) gets the result."""
    cell = CELLS[cell_name]
    async with open_proxy_session(servers.url(cell), *cell.proxy_args, era="modern", **CALLBACKS) as session:
        first = await session.call_tool("sample", {"prompt": "by hand"}, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        assert first.input_requests and len(first.input_requests) == 1
        [(key, question)] = first.input_requests.items()
        assert isinstance(question, types.CreateMessageRequest)
        answer = types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="manual"), model="m"
        )
        final = await session.call_tool(
            "sample",
            {"prompt": "by hand"},
            input_responses={key: answer},
            request_state=first.request_state,
            allow_input_required=True,
        )
    assert isinstance(final, types.CallToolResult)
    assert text_of(final) == "manual"


# Through ModernToHandshake this scenario fails only under some interleavings (MRTR_ASSOCIATION_BUG); the
# deterministic form of that bug is `test_modern_sampling_while_another_call_is_in_flight`.
@pytest.mark.parametrize("cell_name", [name for name in ALL if name not in MODERN_BRIDGED], ids=cell_id)
async def test_modern_concurrent_sampling_calls_keep_their_answers(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    results: dict[str, str] = {}
    async with modern_client(servers.url(cell), *cell.proxy_args, **CALLBACKS) as client:

        async def one(prompt: str) -> None:
            results[prompt] = text_of(await client.call_tool("sample", {"prompt": prompt}))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for index in range(3):
                    tg.start_soon(one, f"prompt-{index}")
    assert results == {f"prompt-{i}": f"sampled:prompt-{i}" for i in range(3)}


@pytest.mark.parametrize("cell_name", sse_bridged_xfail(SSE_ATTRIBUTION_LIMIT), ids=cell_id)
async def test_modern_sampling_while_another_call_is_in_flight(servers: Servers, cell_name: str) -> None:
    """The `input_required` answers the call that needs the input, not an unrelated call still running."""
    cell = CELLS[cell_name]
    sampling = {"sampling": {}}
    async with open_raw_proxy(servers.url(cell), *cell.proxy_args) as proxy:
        await proxy.send(modern_request(1, "server/discover", **{CAPABILITIES_KEY: sampling}))
        await response_to(proxy, 1)
        slow = {"name": "slow", "arguments": {"seconds": 2.0, "steps": 4}}
        await proxy.send(
            modern_request(2, "tools/call", slow, progressToken="slow", **{CAPABILITIES_KEY: sampling})
        )
        await proxy.read_until(lambda m: m.get("method") == "notifications/progress", 10)
        sample = {"name": "sample", "arguments": {"prompt": "mine"}}
        await proxy.send(modern_request(3, "tools/call", sample, **{CAPABILITIES_KEY: sampling}))
        asked, _ = await proxy.read_until(lambda m: "result" in m or "error" in m, 10)
        assert asked["id"] == 3, f"the input_required went to request {asked['id']!r}"
        result = asked["result"]
        assert result["resultType"] == "input_required"
        [(key, question)] = result["inputRequests"].items()
        assert question["method"] == "sampling/createMessage"
        answer = {"role": "assistant", "content": {"type": "text", "text": "answered"}, "model": "m"}
        retry = {**sample, "inputResponses": {key: answer}}
        if "requestState" in result:
            retry["requestState"] = result["requestState"]
        await proxy.send(modern_request(4, "tools/call", retry, **{CAPABILITIES_KEY: sampling}))
        final, _ = await response_to(proxy, 4)
        slow_done, _ = await response_to(proxy, 2)
    assert final["result"]["content"][0]["text"] == "answered"
    assert slow_done["result"]["content"][0]["text"] == "slept 2.0"


# ---- modern client: subscriptions/listen ----------------------------------------------------------------------


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_modern_subscriptions_listen(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    listen_id = "listen-α"
    async with open_raw_proxy(servers.url(cell), *cell.proxy_args) as proxy:
        await proxy.send(modern_request(1, "server/discover"))
        discovered, _ = await response_to(proxy, 1)
        tools_list_changed = bool(discovered["result"]["capabilities"]["tools"].get("listChanged"))
        wanted = {"toolsListChanged": True, "resourceSubscriptions": [SUBSCRIBABLE_RESOURCE_URI]}
        await proxy.send(modern_request(listen_id, "subscriptions/listen", {"notifications": wanted}))
        ack, _ = await proxy.read_until(
            lambda m: m.get("method") == "notifications/subscriptions/acknowledged", 10
        )
        assert ack["params"]["_meta"][SUBSCRIPTION_ID_KEY] == listen_id
        honoured = ack["params"]["notifications"]
        assert honoured.get("resourceSubscriptions") == [SUBSCRIBABLE_RESOURCE_URI]
        assert honoured.get("toolsListChanged", False) == tools_list_changed  # only what the server can do
        await proxy.send(modern_request(2, "tools/call", {"name": "touch", "arguments": {}}))
        updated, _ = await proxy.read_until(
            lambda m: m.get("method") == "notifications/resources/updated", 10
        )
        assert updated["params"]["uri"] == SUBSCRIBABLE_RESOURCE_URI
        assert updated["params"]["_meta"][SUBSCRIPTION_ID_KEY] == listen_id
        if tools_list_changed:
            await proxy.send(modern_request(3, "tools/call", {"name": "change_tools", "arguments": {}}))
            changed, _ = await proxy.read_until(
                lambda m: m.get("method") == "notifications/tools/list_changed", 10
            )
            assert changed["params"]["_meta"][SUBSCRIPTION_ID_KEY] == listen_id
        await proxy.send(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": listen_id}}
        )
        await proxy.send(
            modern_request(4, "tools/call", {"name": "echo", "arguments": {"text": "still here"}})
        )
        after, _ = await response_to(proxy, 4)
        assert after["result"]["content"][0]["text"] == "still here"


# ---- handshake client -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_handshake_initialize_ping_and_common_scenarios(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    logs: list[str] = []
    progress: list[float] = []
    logged = anyio.Event()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))
        logged.set()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    resource_updated = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            resource_updated.set()

    async with open_proxy_session(
        servers.url(cell), *cell.proxy_args, logging_callback=on_log, message_handler=on_message
    ) as session:
        init = session.initialize_result
        assert init is not None and init.protocol_version == "2025-11-25"
        assert init.server_info.name == "sdk-test-server"
        assert init.capabilities.tools is not None
        assert init.instructions == "test server sdk-test-server"
        await session.send_ping()
        assert "echo" in {tool.name for tool in (await session.list_tools()).tools}
        assert text_of(await session.call_tool("echo", {"text": "héllo"})) == "héllo"
        slow = await session.call_tool("slow", {"seconds": 0.4, "steps": 4}, progress_callback=on_progress)
        assert text_of(slow) == "slept 0.4"
        await session.set_logging_level("info")
        await session.call_tool("log", {"level": "warning", "message": "handshake-log"})
        with anyio.fail_after(5):
            await logged.wait()
        static = await session.read_resource("test://static")
        assert static.contents[0].text == STATIC_RESOURCE_TEXT  # type: ignore[union-attr]
        if cell.has_back_channel:  # a stateless server has no channel for unsolicited notifications
            await session.subscribe_resource(SUBSCRIBABLE_RESOURCE_URI)
            # Through the bridge the listen stream opens in the background: touch until the update comes.
            for _attempt in range(20):
                await session.call_tool("touch", {})
                with anyio.move_on_after(0.25):
                    await resource_updated.wait()
                if resource_updated.is_set():
                    break
            assert resource_updated.is_set(), "no notifications/resources/updated after resources/subscribe"
        assert "greet" in [p.name for p in (await session.list_prompts()).prompts]
        greeting = await session.get_prompt("greet", {"name": "Ada"})
        assert greeting.messages[0].content.text == "Hello, Ada!"  # type: ignore[union-attr]
    assert progress == [1, 2, 3, 4]
    assert logs == ["handshake-log"]


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_handshake_fifty_concurrent_calls_and_ten_mb_result(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    results: dict[int, str] = {}
    async with open_proxy_session(servers.url(cell), *cell.proxy_args) as session:

        async def one(index: int) -> None:
            results[index] = text_of(await session.call_tool("echo", {"text": f"call-{index}"}))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for index in range(CONCURRENT_CALLS):
                    tg.start_soon(one, index)
        big = await session.call_tool("big", {"size": TEN_MB})
    assert results == {index: f"call-{index}" for index in range(CONCURRENT_CALLS)}
    assert text_of(big) == big_text(TEN_MB)


@pytest.mark.parametrize("cell_name", HANDSHAKE_BACK_CHANNEL, ids=cell_id)
async def test_handshake_sampling_elicitation_roots_mid_call(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    async with open_proxy_session(servers.url(cell), *cell.proxy_args, **CALLBACKS) as session:
        assert text_of(await session.call_tool("sample", {"prompt": "hi"})) == "sampled:hi"
        assert json.loads(text_of(await session.call_tool("elicit", {"message": "ok?"}))) == {
            "action": "accept",
            "content": {"answer": "yes"},
        }
        assert json.loads(text_of(await session.call_tool("list_roots", {}))) == ["file:///workspace"]


@pytest.mark.parametrize("cell_name", ALL, ids=cell_id)
async def test_handshake_cancellation(servers: Servers, cell_name: str) -> None:
    cell = CELLS[cell_name]
    async with open_raw_proxy(servers.url(cell), *cell.proxy_args) as proxy:
        await proxy.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HANDSHAKE_INIT})
        await response_to(proxy, 1)
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        slow = {"name": "slow", "arguments": {"seconds": 1.5, "steps": 6}, "_meta": {"progressToken": "p"}}
        await proxy.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": slow})
        await proxy.read_until(lambda m: m.get("method") == "notifications/progress", 10)
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}})
        echo = {"name": "echo", "arguments": {"text": "after"}}
        await proxy.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": echo})
        after, _ = await response_to(proxy, 3)
        assert after["result"]["content"][0]["text"] == "after"
        later = await drain(proxy, 2.0)
    assert not [m for m in later if m.get("id") == 2], later


async def test_handshake_client_to_modern_only_server_wire(servers: Servers) -> None:
    """HandshakeToModern on the wire: initialize and ping answered locally, sampling as a stdio request
    under an id of the proxy's own, the original id answered with the final result."""
    cell = CELLS["modern-only"]
    init = {
        "protocolVersion": "2025-06-18",
        "capabilities": {"sampling": {}, "roots": {"listChanged": True}},
        "clientInfo": {"name": "raw", "version": "0"},
    }
    async with open_raw_proxy(servers.url(cell)) as proxy:
        await proxy.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        initialized, _ = await response_to(proxy, 1)
        assert initialized["result"]["protocolVersion"] == "2025-06-18"
        assert initialized["result"]["serverInfo"]["name"] == "sdk-test-server"
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await proxy.send({"jsonrpc": "2.0", "id": 2, "method": "ping"})
        pong, _ = await response_to(proxy, 2)
        assert pong["result"] == {}
        await proxy.send(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "tools/call",
                "params": {"name": "sample", "arguments": {"prompt": "q"}},
            }
        )
        question, _ = await proxy.read_until(lambda m: m.get("method") == "sampling/createMessage", 10)
        assert question["id"] not in (1, 2, 3)
        reply = {"role": "assistant", "content": {"type": "text", "text": "A"}, "model": "m"}
        await proxy.send({"jsonrpc": "2.0", "id": question["id"], "result": reply})
        final, _ = await response_to(proxy, 3)
        assert final["result"]["content"][0]["text"] == "A"


async def test_handshake_subscription_through_bridge_keeps_listen_internal(servers: Servers) -> None:
    """`resources/subscribe` through HandshakeToModern: the update arrives, without the listen's id."""
    async with open_raw_proxy(servers.url(CELLS["modern-only"])) as proxy:
        await proxy.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HANDSHAKE_INIT})
        await response_to(proxy, 1)
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        subscribe = {"uri": SUBSCRIBABLE_RESOURCE_URI}
        await proxy.send({"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": subscribe})
        await response_to(proxy, 2)
        updated = await touch_until_updated(proxy)
    assert updated["params"]["uri"] == SUBSCRIBABLE_RESOURCE_URI
    assert SUBSCRIPTION_ID_KEY not in updated["params"].get("_meta", {}), (
        "the bridge's internal listen id leaked to a client that knows no subscriptions/listen"
    )


async def test_handshake_client_bridge_forwards_log_level_and_client_meta(servers: Servers) -> None:
    """`logging/setLevel` becomes a per-request `logLevel`; the SDK server (modern) then logs for that call."""
    cell = CELLS["modern-only"]
    logs: list[str] = []
    logged = anyio.Event()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(str(params.data))
        logged.set()

    async with open_proxy_session(servers.url(cell), logging_callback=on_log) as session:
        await session.call_tool("log", {"level": "info", "message": "before-set-level"})
        await session.set_logging_level("warning")
        await session.call_tool("log", {"level": "info", "message": "below-level"})
        await session.call_tool("log", {"level": "error", "message": "at-level"})
        with anyio.fail_after(5):
            await logged.wait()
        headers = json.loads(text_of(await session.call_tool("whoami", {})))
    assert logs == ["at-level"]
    assert headers["mcp-protocol-version"] == MODERN
    assert headers["mcp-method"] == "tools/call" and headers["mcp-name"] == "whoami"


# ---- the `--protocol handshake` switch and the probe ----------------------------------------------------------


async def test_protocol_handshake_never_sends_modern_requests(fault_server: FaultControl) -> None:
    """Forced handshake era: a modern client is bridged at once (no discover probe reaches the server)."""
    async with open_raw_proxy(fault_server.mcp_url, "--protocol", "handshake") as proxy:
        await proxy.send(modern_request(1, "server/discover"))
        discovered, _ = await response_to(proxy, 1)
        await proxy.send(modern_request(2, "tools/call", {"name": "echo", "arguments": {"text": "x"}}))
        called, _ = await response_to(proxy, 2)
    assert discovered["result"]["resultType"] == "complete"
    assert discovered["result"]["_meta"][SERVER_INFO_KEY]["name"] == "fault-server"
    assert called["result"]["content"][0]["text"] == "x"
    methods = [
        entry["body"]["method"] for entry in await fault_server.rpc_requests() if "method" in entry["body"]
    ]
    assert "server/discover" not in methods
    assert methods[:2] == ["initialize", "notifications/initialized"]
    for entry in await fault_server.rpc_requests("tools/call"):
        meta = entry["body"]["params"].get("_meta", {})
        assert VERSION_KEY not in meta and CAPABILITIES_KEY not in meta, "modern _meta leaked upstream"


async def test_modern_client_to_legacy_only_server_is_bridged(fault_server: FaultControl) -> None:
    """The probe's -32601 from a handshake-only Streamable HTTP server means: bridge, and declare what the
    client's `_meta` declared."""
    capabilities = {"sampling": {}, "elicitation": {}}
    async with open_raw_proxy(fault_server.mcp_url) as proxy:
        request = modern_request(1, "server/discover")
        request["params"]["_meta"][CAPABILITIES_KEY] = capabilities
        await proxy.send(request)
        discovered, _ = await response_to(proxy, 1)
        await proxy.send(modern_request(2, "tools/list"))
        listed, _ = await response_to(proxy, 2)
    assert MODERN in discovered["result"]["supportedVersions"]
    assert {tool["name"] for tool in listed["result"]["tools"]} >= {"echo", "slow", "sample"}
    [initialize] = await fault_server.rpc_requests("initialize")
    declared = initialize["body"]["params"]["capabilities"]
    assert "sampling" in declared and "elicitation" in declared
    assert "roots" not in declared


async def test_no_handshake_is_injected_for_a_modern_client(servers: Servers) -> None:
    """Against a 2026-only server, a modern client's traffic is relayed statelessly (the filter refuses
    every handshake-era request, so any injected initialize would surface as an error)."""
    cell = CELLS["modern-only"]
    async with modern_client(servers.url(cell)) as client:
        headers = json.loads(text_of(await client.call_tool("whoami", {})))
    assert "mcp-session-id" not in headers
    assert headers["mcp-protocol-version"] == MODERN


@pytest.mark.parametrize("cell_name", ["sdk-streamable", "modern-only"], ids=cell_id)
async def test_modern_error_from_server_is_relayed(servers: Servers, cell_name: str) -> None:
    """An unsupported version is the server's (or proxy's) -32022 with `data.supported`, never a transport error."""
    cell = CELLS[cell_name]
    async with open_raw_proxy(servers.url(cell), *cell.proxy_args) as proxy:
        request = modern_request(1, "server/discover")
        request["params"]["_meta"][VERSION_KEY] = "2099-01-01"
        await proxy.send(request)
        response, _ = await response_to(proxy, 1)
    assert response["error"]["code"] == -32022, response
    assert MODERN in response["error"]["data"]["supported"]
