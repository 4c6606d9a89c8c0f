"""A real MCP server built with the official SDK, the well-behaved peer of the integration tests.

Run it as `python -m tests.servers.sdk_server --transport {sse,streamable,streamable-json,stateless}`; it binds
127.0.0.1 only and prints `READY <port>` once it listens. Endpoints: `/sse` (legacy HTTP+SSE, messages POSTed to
`/messages/`) or `/mcp` (Streamable HTTP).

Tools that need the client (`sample`, `elicit`, `list_roots`) send server requests in the handshake era and
return an `input_required` result in the 2026-07-28 era (read the answer from `inputResponses` on the retry).
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.applications import Starlette

from tests.servers.serving import serve_forever, server_arguments

TRANSPORTS = ("sse", "streamable", "streamable-json", "stateless")
DEFAULT_MAX_BODY = 16 * 1024 * 1024
LONG_TOOL_NAME = "a_tool_whose_name_is_exactly_sixty_characters_long_for_tests"
assert len(LONG_TOOL_NAME) == 60
BIG_PATTERN = "0123456789abcdefghijklmnopqrstuvwxyz\n"
STATIC_RESOURCE_URI = "test://static"
STATIC_RESOURCE_TEXT = "static resource text"
SUBSCRIBABLE_RESOURCE_URI = "test://counter"


def big_text(size: int) -> str:
    """Deterministic ASCII text of exactly `size` bytes (a repeating pattern)."""
    repeats, rest = divmod(size, len(BIG_PATTERN))
    return BIG_PATTERN * repeats + BIG_PATTERN[:rest]


@dataclass
class InMemoryEventStore(EventStore):
    """Keeps every event of every stream so a client can resume with `Last-Event-ID`."""

    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _events: dict[EventId, tuple[StreamId, types.JSONRPCMessage | None]] = field(default_factory=dict)

    async def store_event(self, stream_id: StreamId, message: types.JSONRPCMessage | None) -> EventId:
        event_id = f"{stream_id}_{next(self._counter)}"
        self._events[event_id] = (stream_id, message)
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        if last_event_id not in self._events:
            return None
        stream_id, _ = self._events[last_event_id]
        seen = False
        for event_id, (event_stream, message) in list(self._events.items()):
            if event_id == last_event_id:
                seen = True
                continue
            if seen and event_stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


@dataclass
class ServerState:
    """What the handshake-era `resources/subscribe` and `logging/setLevel` handlers remember."""

    subscribed: set[str] = field(default_factory=set)
    log_level: str | None = None
    counter: int = 0


def _is_modern(ctx: Context) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


def _related(ctx: Context) -> ServerMessageMetadata:
    """Route a server request onto the stream of the tool call that caused it."""
    return ServerMessageMetadata(related_request_id=ctx.request_context.request_id)


def _answer(ctx: Context, key: str) -> Any | None:
    responses = ctx.input_responses or {}
    return responses.get(key)


def _sampling_request(prompt: str) -> types.CreateMessageRequest:
    return types.CreateMessageRequest(
        params=types.CreateMessageRequestParams(
            messages=[
                types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))
            ],
            max_tokens=100,
        )
    )


def _elicit_request(message: str) -> types.ElicitRequest:
    return types.ElicitRequest(
        params=types.ElicitRequestFormParams(
            message=message,
            requested_schema={"type": "object", "properties": {"answer": {"type": "string"}}},
        )
    )


def _sampling_text(result: Any) -> str:
    content = result.content
    if isinstance(content, list):
        return "".join(getattr(block, "text", "") for block in content)
    return getattr(content, "text", "")


def build_server(name: str, tool_prefix: str = "", extra_tools: int = 0) -> MCPServer:
    """The SDK server with every test tool, resource and prompt registered."""
    mcp = MCPServer(name=name, version="1.0.0", instructions=f"test server {name}", log_level="WARNING")
    state = ServerState()
    p = tool_prefix

    @mcp.tool(name=f"{p}echo", structured_output=False)
    def echo(text: str) -> str:
        """Return `text` unchanged."""
        return text

    @mcp.tool(name=f"{p}add", structured_output=False)
    def add(a: float, b: float) -> str:
        """Add two numbers."""
        total = a + b
        return str(int(total)) if total == int(total) else str(total)

    @mcp.tool(name=f"{p}slow", structured_output=False)
    async def slow(ctx: Context, seconds: int | float = 1.0, steps: int = 4) -> str:
        """Sleep `seconds` in total, reporting progress after each of `steps` steps."""
        # `int | float` keeps the number as sent, so the answer reads "slept 75" or "slept 1.0".
        steps = max(1, steps)
        for step in range(1, steps + 1):
            await anyio.sleep(seconds / steps)
            await ctx.report_progress(step, steps, f"step {step}/{steps}")
        return f"slept {seconds}"

    @mcp.tool(name=f"{p}big", structured_output=False)
    def big(size: int) -> str:
        """Return a deterministic text of exactly `size` bytes."""
        return big_text(size)

    @mcp.tool(name=f"{p}size_of", structured_output=False)
    def size_of(data: str) -> str:
        """Return the length of `data` in characters (for large-request tests)."""
        return str(len(data))

    @mcp.tool(name=f"{p}sample", structured_output=False)
    async def sample(ctx: Context, prompt: str) -> str | types.InputRequiredResult:
        """Ask the client for a sampling completion of `prompt` and return its text."""
        if _is_modern(ctx):
            answer = _answer(ctx, "sample")
            if answer is None:
                return types.InputRequiredResult(input_requests={"sample": _sampling_request(prompt)})
            return _sampling_text(answer)
        result = await ctx.session.send_request(
            _sampling_request(prompt), types.CreateMessageResult, metadata=_related(ctx)
        )
        return _sampling_text(result)

    @mcp.tool(name=f"{p}elicit", structured_output=False)
    async def elicit(ctx: Context, message: str) -> str | types.InputRequiredResult:
        """Ask the client to elicit `{answer: string}` and return the result as JSON."""
        if _is_modern(ctx):
            answer = _answer(ctx, "elicit")
            if answer is None:
                return types.InputRequiredResult(input_requests={"elicit": _elicit_request(message)})
        else:
            answer = await ctx.session.send_request(
                _elicit_request(message), types.ElicitResult, metadata=_related(ctx)
            )
        return json.dumps({"action": answer.action, "content": answer.content})

    @mcp.tool(name=f"{p}list_roots", structured_output=False)
    async def list_roots(ctx: Context) -> str | types.InputRequiredResult:
        """Ask the client for its roots and return their URIs as a JSON list."""
        if _is_modern(ctx):
            answer = _answer(ctx, "roots")
            if answer is None:
                return types.InputRequiredResult(input_requests={"roots": types.ListRootsRequest()})
        else:
            answer = await ctx.session.send_request(
                types.ListRootsRequest(), types.ListRootsResult, metadata=_related(ctx)
            )
        return json.dumps([str(root.uri) for root in answer.roots])

    @mcp.tool(name=f"{p}log", structured_output=False)
    async def log(ctx: Context, level: types.LoggingLevel, message: str) -> str:
        """Send a `notifications/message` at `level`, then return "logged"."""
        await ctx.session.send_log_message(
            level=level, data=message, logger="sdk_server", related_request_id=ctx.request_context.request_id
        )
        return "logged"

    @mcp.tool(name=f"{p}whoami", structured_output=False)
    def whoami(ctx: Context) -> str:
        """Return the HTTP request headers this call arrived with, as a JSON object (lowercase names)."""
        headers = ctx.headers or {}
        return json.dumps({key.lower(): value for key, value in headers.items()})

    @mcp.tool(name=f"{p}env_echo", structured_output=False)
    def env_echo(env: dict[str, str] | None = None) -> str:
        """Return the `env` argument as JSON (null when absent)."""
        return json.dumps(env)

    @mcp.tool(name=f"{p}touch", structured_output=False)
    async def touch(ctx: Context, uri: str = SUBSCRIBABLE_RESOURCE_URI) -> str:
        """Bump the counter resource and send `notifications/resources/updated` if `uri` is subscribed."""
        state.counter += 1
        if _is_modern(ctx):
            await ctx.notify_resource_updated(uri)
            return "published"
        if uri in state.subscribed:
            await ctx.session.send_resource_updated(uri)
            return "notified"
        return "not subscribed"

    @mcp.tool(name=f"{p}change_tools", structured_output=False)
    async def change_tools(ctx: Context) -> str:
        """Send `notifications/tools/list_changed` on the standalone channel (GET stream)."""
        if _is_modern(ctx):
            await ctx.notify_tools_changed()
        else:
            await ctx.session.send_tool_list_changed()
        return "sent"

    @mcp.tool(name=f"{p}{LONG_TOOL_NAME}", structured_output=False)
    def long_named() -> str:
        """A tool with a 60-character name (without prefix)."""
        return "long"

    for index in range(extra_tools):
        _add_extra_tool(mcp, f"{p}extra_{index}")

    @mcp.resource(STATIC_RESOURCE_URI, name="static", mime_type="text/plain")
    def static_resource() -> str:
        return STATIC_RESOURCE_TEXT

    @mcp.resource("test://item/{n}", name="item", mime_type="text/plain")
    def item(n: str) -> str:
        return f"item {n}"

    @mcp.resource(SUBSCRIBABLE_RESOURCE_URI, name="counter", mime_type="text/plain")
    def counter() -> str:
        return str(state.counter)

    @mcp.prompt()
    def greet(name: str) -> str:
        """Greet `name`."""
        return f"Hello, {name}!"

    _register_handshake_handlers(mcp, state)
    return mcp


def _add_extra_tool(mcp: MCPServer, name: str) -> None:
    def extra(text: str = "") -> str:
        return f"{name}:{text}"

    mcp.add_tool(extra, name=name, description=f"extra tool {name}", structured_output=False)


def _register_handshake_handlers(mcp: MCPServer, state: ServerState) -> None:
    """`resources/subscribe`, `resources/unsubscribe` and `logging/setLevel`, which MCPServer leaves out."""
    lowlevel = mcp._lowlevel_server  # the SDK exposes no public hook for these methods

    async def on_subscribe(
        ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        state.subscribed.add(str(params.uri))
        return types.EmptyResult()

    async def on_unsubscribe(
        ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        state.subscribed.discard(str(params.uri))
        return types.EmptyResult()

    async def on_set_level(
        ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        state.log_level = params.level
        return types.EmptyResult()

    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, on_unsubscribe)
    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, on_set_level)


def build_app(
    transport: str,
    *,
    name: str = "sdk-test-server",
    event_store: bool = False,
    retry_interval: int | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    tool_prefix: str = "",
    extra_tools: int = 0,
) -> Starlette:
    """The Starlette app for `transport` (one of TRANSPORTS)."""
    mcp = build_server(name, tool_prefix=tool_prefix, extra_tools=extra_tools)
    if transport == "sse":
        return mcp.sse_app(max_request_body_size=max_body)
    return mcp.streamable_http_app(
        json_response=transport == "streamable-json",
        stateless_http=transport == "stateless",
        event_store=InMemoryEventStore() if event_store else None,
        retry_interval=retry_interval,
        max_request_body_size=max_body,
    )


def endpoint_path(transport: str) -> str:
    """The URL path a client connects to for `transport`."""
    return "/sse" if transport == "sse" else "/mcp"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = server_arguments("tests.servers.sdk_server", __doc__)
    parser.add_argument("--transport", choices=TRANSPORTS, default="streamable")
    parser.add_argument("--event-store", action="store_true", help="enable resumability (Last-Event-ID)")
    parser.add_argument("--retry-interval", type=int, default=None, metavar="MS", help="SSE retry hint in ms")
    parser.add_argument("--name", default="sdk-test-server", help="serverInfo.name")
    parser.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, metavar="BYTES")
    parser.add_argument(
        "--tool-prefix", default="", help="prefix every tool name (for aggregation collisions)"
    )
    parser.add_argument(
        "--extra-tools", type=int, default=0, metavar="N", help="add tools extra_0 … extra_{N-1}"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    app = build_app(
        args.transport,
        name=args.name,
        event_store=args.event_store,
        retry_interval=args.retry_interval,
        max_body=args.max_body,
        tool_prefix=args.tool_prefix,
        extra_tools=args.extra_tools,
    )
    serve_forever(app, args.port)


if __name__ == "__main__":
    main()
