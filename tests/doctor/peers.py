"""Test peers for the `--check` tests: official SDK servers and a server that wants credentials.

Run as `python -m tests.doctor.peers KIND [--certfile PEM --keyfile PEM]` with KIND one of `sse`,
`streamable`, `stateless` or `unauthorized`. It binds 127.0.0.1 (`--port`, 0: a free one), prints `READY <n>`
once it serves, and serves until terminated.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.servers.serving import serve_forever, server_arguments

KINDS = ("sse", "streamable", "stateless", "unauthorized")
SERVER_NAME = "doctor-peer"
INSTRUCTIONS = "Use the add tool for sums.\nThis second line is not shown."
TOOLS = ("add", "echo")
CHALLENGE = 'Bearer realm="doctor", error="invalid_token"'


def mcp_server() -> MCPServer:
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, version="1.2.3")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Say it back."""
        return text

    @server.prompt()
    def greet(name: str) -> str:
        """A greeting."""
        return f"Hello {name}"

    @server.resource("test://static")
    def static() -> str:
        return "static text"

    return server


async def _unauthorized(request: Request) -> JSONResponse:
    return JSONResponse({"error": "invalid_token"}, status_code=401, headers={"WWW-Authenticate": CHALLENGE})


def build_app(kind: str) -> Starlette:
    if kind == "unauthorized":
        methods = ["GET", "POST", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", _unauthorized, methods=methods)])
    server = mcp_server()
    if kind == "sse":
        return server.sse_app()
    return server.streamable_http_app(stateless_http=kind == "stateless")


def main() -> None:
    parser = server_arguments("tests.doctor.peers", __doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args()
    serve_forever(build_app(args.kind), args.port, certfile=args.certfile, keyfile=args.keyfile)


if __name__ == "__main__":
    main()
