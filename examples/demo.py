"""End-to-end demo: a real MCP client → mcp-sse-proxy (stdio) → a real MCP server on 127.0.0.1.

Starts an MCP server built with the official SDK (legacy SSE and Streamable HTTP, one after the other),
spawns `python -m mcp_sse_proxy` as the SDK's stdio client would, and prints what came back.
Needs the `mcp` package (installed by `pip install -e '.[test]'`).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

SERVER = textwrap.dedent(
    """
    import sys
    import uvicorn
    from mcp.server.mcpserver import Context, MCPServer

    server = MCPServer("demo-server", instructions="A tiny server for the mcp-sse-proxy demo.")

    @server.tool()
    def add(a: int, b: int) -> int:
        \"\"\"Add two integers.\"\"\"
        return a + b

    @server.tool()
    async def countdown(n: int, ctx: Context) -> str:
        \"\"\"Count down, reporting progress.\"\"\"
        for i in range(n):
            await ctx.report_progress(i + 1, n)
        return "liftoff"

    @server.resource("demo://greeting")
    def greeting() -> str:
        return "hello from the demo server"

    transport, port = sys.argv[1], int(sys.argv[2])
    app = server.sse_app() if transport == "sse" else server.streamable_http_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the demo server did not start on port {port}")


async def talk_through_proxy(url: str) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_sse_proxy", "--sse-url", url], cwd=str(Path(__file__).parent)
    )
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        with anyio.fail_after(30):
            init = await session.initialize()
            print(f"  initialize     → server {init.server_info.name!r}, protocol {init.protocol_version}")
            tools = await session.list_tools()
            print(f"  tools/list     → {[tool.name for tool in tools.tools]}")
            added = await session.call_tool("add", {"a": 20, "b": 22})
            print(f"  tools/call add → {added.content[0].text}")
            counted = await session.call_tool("countdown", {"n": 3}, progress_callback=on_progress)
            print(f"  countdown      → {counted.content[0].text} (progress seen: {progress})")
            read_result = await session.read_resource("demo://greeting")
            print(f"  resources/read → {read_result.contents[0].text!r}")


def main() -> int:
    for transport, path in (("sse", "/sse"), ("streamable-http", "/mcp")):
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, transport, str(port)])
        try:
            wait_for_port(port)
            url = f"http://127.0.0.1:{port}{path}"
            print(f"{transport} server at {url}, reached through mcp-sse-proxy over stdio:")
            anyio.run(talk_through_proxy, url)
        finally:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
    print("demo finished: both transports relayed end to end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
