"""An official-SDK MCP server for the aggregation tests: colliding names, pages, cancellation it reports.

Run as `python -m tests.aggregate.peer --transport {sse,streamable} --port 0 --name NAME [--page-size N]`;
it binds 127.0.0.1 only and prints `READY <port>`. Every text it returns starts with its name, so a test
can tell which server answered. `--page-size` makes tools/list, prompts/list and resources/list
paginate (cursor = offset).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.applications import Starlette

from tests.servers.serving import serve_forever, server_arguments

LONG_TOOL = "tool_with_a_name_of_exactly_sixty_characters_for_aggregation"
assert len(LONG_TOOL) == 60
SHARED_URI = "shared://doc"


def build_server(name: str, page_size: int | None, extra_tools: int) -> MCPServer:
    mcp = MCPServer(name=name, version="1.0.0", instructions=f"peer {name} instructions", log_level="WARNING")
    cancelled: list[str] = []

    @mcp.tool(structured_output=False)
    def echo(text: str) -> str:
        """Return `name:text`."""
        return f"{name}:{text}"

    @mcp.tool(name="dotted.name", structured_output=False)
    def dotted() -> str:
        """A tool whose name holds a character clients refuse."""
        return f"{name}:dotted"

    @mcp.tool(name=LONG_TOOL, structured_output=False)
    def long_named() -> str:
        return f"{name}:long"

    @mcp.tool(structured_output=False)
    async def slow(ctx: Context, seconds: float = 1.0, steps: int = 4, tag: str = "") -> str:
        """Sleep with progress; a cancelled call is remembered under `tag`."""
        try:
            for step in range(1, steps + 1):
                await anyio.sleep(seconds / steps)
                await ctx.report_progress(step, steps, f"{name} step {step}")
        except anyio.get_cancelled_exc_class():
            cancelled.append(tag)
            raise
        return f"{name}:slept"

    @mcp.tool(structured_output=False)
    def cancelled_calls() -> str:
        """The tags of the slow calls that were cancelled, as JSON."""
        return json.dumps(cancelled)

    @mcp.tool(structured_output=False)
    async def sample(ctx: Context, prompt: str) -> str:
        """Ask the client for a completion of `prompt`."""
        request = types.CreateMessageRequest(
            params=types.CreateMessageRequestParams(
                messages=[
                    types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))
                ],
                max_tokens=10,
            )
        )
        metadata = ServerMessageMetadata(related_request_id=ctx.request_context.request_id)
        result = await ctx.session.send_request(request, types.CreateMessageResult, metadata=metadata)
        content = result.content
        return f"{name}:" + (content.text if isinstance(content, types.TextContent) else "?")

    @mcp.tool(structured_output=False)
    async def log(ctx: Context, message: str) -> str:
        await ctx.session.send_log_message(
            level="warning", data=message, logger="peer", related_request_id=ctx.request_context.request_id
        )
        return f"{name}:logged"

    @mcp.tool(structured_output=False)
    def link() -> list[Any]:
        """A resource link to the URI both peers list."""
        return [
            types.TextContent(type="text", text=f"{name}:link"),
            types.ResourceLink(type="resource_link", uri=SHARED_URI, name="doc"),
        ]

    @mcp.tool(structured_output=False)
    async def add_tool(ctx: Context) -> str:
        """Register `added` and announce `tools/list_changed` (as the client's era wants it)."""
        mcp.add_tool(
            lambda: f"{name}:added", name="added", description="added later", structured_output=False
        )
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            await ctx.notify_tools_changed()  # 2026-07-28: on the client's listen streams
        else:
            await ctx.session.send_tool_list_changed()
        return f"{name}:added"

    for index in range(extra_tools):
        _add_extra(mcp, name, index)

    @mcp.resource(SHARED_URI, name="doc", mime_type="text/plain")
    def doc() -> str:
        return f"doc from {name}"

    @mcp.resource(f"{name}://own", name="own", mime_type="text/plain")
    def own() -> str:
        return f"own of {name}"

    @mcp.resource("item://{n}", name="item", mime_type="text/plain")
    def item(n: str) -> str:
        return f"{name} item {n}"

    @mcp.prompt()
    def greet(who: str) -> str:
        """Greet `who`."""
        return f"{name} greets {who}"

    @mcp.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> types.Completion:
        return types.Completion(values=[f"{name}-{argument.value}"])

    if page_size:
        _paginate(mcp, page_size)
    return mcp


def _add_extra(mcp: MCPServer, name: str, index: int) -> None:
    mcp.add_tool(lambda: f"{name}:extra_{index}", name=f"extra_{index}", structured_output=False)


def _paginate(mcp: MCPServer, size: int) -> None:
    """Replace the list handlers with ones that serve `size` items per page (cursor = offset as text)."""
    lowlevel = mcp._lowlevel_server  # the SDK has no public switch for paging

    def cut(items: list[Any], params: types.PaginatedRequestParams) -> tuple[list[Any], str | None]:
        start = int(params.cursor or 0)
        end = start + size
        return items[start:end], (str(end) if end < len(items) else None)

    async def tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams
    ) -> types.ListToolsResult:
        page, cursor = cut(await mcp.list_tools(), params)
        return types.ListToolsResult(tools=page, next_cursor=cursor)

    async def prompts(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams
    ) -> types.ListPromptsResult:
        page, cursor = cut(await mcp.list_prompts(), params)
        return types.ListPromptsResult(prompts=page, next_cursor=cursor)

    async def resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams
    ) -> types.ListResourcesResult:
        page, cursor = cut(await mcp.list_resources(), params)
        return types.ListResourcesResult(resources=page, next_cursor=cursor)

    lowlevel.add_request_handler("tools/list", types.PaginatedRequestParams, tools)
    lowlevel.add_request_handler("prompts/list", types.PaginatedRequestParams, prompts)
    lowlevel.add_request_handler("resources/list", types.PaginatedRequestParams, resources)


def build_app(transport: str, name: str, page_size: int | None, extra_tools: int) -> Starlette:
    mcp = build_server(name, page_size, extra_tools)
    if transport == "sse":
        return mcp.sse_app()
    return mcp.streamable_http_app()


def main(argv: Sequence[str] | None = None) -> None:
    parser = server_arguments("tests.aggregate.peer", __doc__)
    parser.add_argument("--transport", choices=("sse", "streamable"), default="streamable")
    parser.add_argument("--name", default="peer")
    parser.add_argument("--page-size", type=int, default=None)
    parser.add_argument("--extra-tools", type=int, default=0)
    args = parser.parse_args(argv)
    serve_forever(build_app(args.transport, args.name, args.page_size, args.extra_tools), args.port)


if __name__ == "__main__":
    main()
