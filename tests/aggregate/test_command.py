"""End to end: `python -m mcp_sse_proxy --config FILE --profile a --profile b` under the SDK stdio client."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp.shared.exceptions import MCPError

from tests.aggregate.harness import REPO_ROOT, Peer
from tests.servers.sdk_server import LONG_TOOL_NAME

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


async def sampling(
    context: ClientRequestContext, params: types.CreateMessageRequestParams
) -> types.CreateMessageResult:
    content = params.messages[0].content
    text = content.text if isinstance(content, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"sampled:{text}"), model="m"
    )


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_two_sdk_servers_through_the_command(
    start_sdk_server: Callable[..., Peer], tmp_path: Path
) -> None:
    sse = start_sdk_server("sse", "--name", "legacy")
    streamable = start_sdk_server("streamable", "--name", "modern")
    config = tmp_path / "two.yaml"
    config.write_text(
        "profiles:\n"
        f"  legacy:\n    url: {sse.url}\n    prefix: old\n    ping_interval: 0\n"
        f"  modern:\n    url: {streamable.url}\n    ping_interval: 0\n    exclude_tools: ['big', 'size_of']\n"
    )
    env = get_default_environment() | {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_sse_proxy", "--config", str(config), "--profile", "legacy", "--profile", "modern"],
        env=env,
        cwd=REPO_ROOT,
    )
    with (tmp_path / "proxy.stderr").open("w+") as errlog:
        try:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(
                    read, write, read_timeout_seconds=20, sampling_callback=sampling
                ) as session:
                    with anyio.fail_after(20):
                        init = await session.initialize()
                    assert init.server_info.name == "mcp-sse-proxy"
                    assert "[old]" in (init.instructions or "") and "[modern]" in (init.instructions or "")

                    names = [tool.name for tool in (await session.list_tools()).tools]
                    assert "old__echo" in names and "modern__echo" in names
                    assert "old__big" in names and "modern__big" not in names  # excluded by glob
                    assert all(len(name) <= 64 for name in names)
                    for alias in ("old", "modern"):
                        long = [n for n in names if n.startswith(f"{alias}__{LONG_TOOL_NAME[:10]}")]
                        assert len(long) == 1 and len(long[0]) == 64
                        assert text_of(await session.call_tool(long[0], {})) == "long"

                    assert text_of(await session.call_tool("old__echo", {"text": "a"})) == "a"
                    assert text_of(await session.call_tool("modern__add", {"a": 1, "b": 2})) == "3"
                    assert text_of(await session.call_tool("modern__sample", {"prompt": "p"})) == "sampled:p"
                    with pytest.raises(MCPError):
                        await session.call_tool("modern__big", {"size": 1})

                    resources = [str(r.uri) for r in (await session.list_resources()).resources]
                    assert "test://static" in resources and "modern+test://static" in resources
                    read = await session.read_resource("modern+test://static")
                    assert str(read.contents[0].uri) == "modern+test://static"
        except BaseException:
            errlog.seek(0)
            sys.stderr.write(errlog.read()[-10000:])
            raise
