"""A deliberately lean MCP server for the benchmark, on raw asyncio HTTP/1.1 (no framework).

It speaks both transports a proxy may use upstream:

* legacy HTTP+SSE: `GET /sse` opens the event stream and announces `/messages?session=ID`; a `POST` there
  answers 202 and the JSON-RPC response follows on the stream as an `event: message`;
* Streamable HTTP: `POST /mcp` answers requests with an `application/json` body (`POST /mcp-sse` answers
  with a one-event `text/event-stream` body instead), notifications with 202; `initialize` issues an
  `Mcp-Session-Id`; `GET` answers 405, `DELETE` ends the session.

Tools: `echo(text)` and `blob(size)` (the deterministic text of `workload.blob_text`, pre-encoded once).
Run as `python upstream.py [--port 0]`; it prints `READY <port>` on stdout once listening on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import workload

HOST = "127.0.0.1"
TOOLS = {
    "tools": [
        {
            "name": "echo",
            "description": "Returns its text.",
            "inputSchema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        },
        {
            "name": "blob",
            "description": "Returns `size` characters of deterministic text.",
            "inputSchema": {
                "type": "object",
                "properties": {"size": {"type": "integer"}},
                "required": ["size"],
            },
        },
    ]
}
MAX_BLOB = 64 * 1024 * 1024


class Server:
    def __init__(self, bearer: str | None = None) -> None:
        #: With `--bearer TOKEN`, every request without `Authorization: Bearer TOKEN` is answered 401.
        self.bearer = bearer
        self.sse_streams: dict[str, asyncio.StreamWriter] = {}
        self.mcp_sessions: set[str] = set()
        self._blob_json: dict[int, bytes] = {}

    # -- MCP ------------------------------------------------------------------------------------------

    def answer(self, body: bytes) -> list[bytes] | None:
        """The response to one JSON-RPC message as parts to write in turn (a 4 MB result is never copied
        into a larger buffer), or None for a notification or a response."""
        try:
            msg = json.loads(body)
        except ValueError:
            return [self._error(None, -32700, "parse error")]
        if not isinstance(msg, dict) or "method" not in msg or "id" not in msg:
            return None
        msg_id, method, params = msg["id"], msg["method"], msg.get("params") or {}
        head = b'{"jsonrpc":"2.0","id":' + workload.encode(msg_id) + b',"result":'
        if method == "tools/call":
            name = params.get("name")
            args = params.get("arguments") or {}
            if name == "blob":
                size = args.get("size", workload.LARGE_SIZE)
                if isinstance(size, int) and 0 <= size <= MAX_BLOB:
                    return [
                        head + b'{"content":[{"type":"text","text":',
                        self._blob(size),
                        b'}],"isError":false}}',
                    ]
            elif name == "echo":
                text = workload.encode(str(args.get("text", "")))
                return [head + b'{"content":[{"type":"text","text":' + text + b'}],"isError":false}}']
            return [self._error(msg_id, -32602, f"unknown tool or bad arguments: {name!r}")]
        if method == "ping":
            return [head + b"{}}"]
        if method == "tools/list":
            return [head + workload.encode(TOOLS) + b"}"]
        if method == "initialize":
            result = {
                "protocolVersion": params.get("protocolVersion", workload.PROTOCOL_VERSION),
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "bench-upstream", "version": "1"},
            }
            return [head + workload.encode(result) + b"}"]
        return [self._error(msg_id, -32601, f"method not found: {method}")]

    def _blob(self, size: int) -> bytes:
        encoded = self._blob_json.get(size)
        if encoded is None:
            encoded = self._blob_json[size] = workload.encode(workload.blob_text(size))
        return encoded

    @staticmethod
    def _error(msg_id: Any, code: int, message: str) -> bytes:
        return workload.encode({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})

    # -- HTTP -----------------------------------------------------------------------------------------

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._exchange(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is finished."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        else:
            body = await reader.readexactly(int(headers.get("content-length") or 0))
        url = urlsplit(target)
        path = url.path
        if self.bearer is not None and headers.get("authorization") != f"Bearer {self.bearer}":
            _respond(writer, 401, [b"sign in"], extra=b'www-authenticate: Bearer realm="bench"\r\n')
            await writer.drain()
            return True
        if path == "/sse" and method == "GET":
            await self._sse_stream(reader, writer)
            return False
        if path == "/messages" and method == "POST":
            session = parse_qs(url.query).get("session", [""])[0]
            stream = self.sse_streams.get(session)
            if stream is None:
                _respond(writer, 404, [b"unknown session"])
                await writer.drain()
                return True
            _respond(writer, 202, [b"Accepted"])
            reply = self.answer(body)
            if reply is not None:
                _write_chunk(stream, [b"event: message\ndata: ", *reply, b"\n\n"])
                await asyncio.gather(writer.drain(), stream.drain())
            else:
                await writer.drain()
            return True
        if path in ("/mcp", "/mcp-sse"):
            await self._streamable(writer, method, path, headers, body)
            return True
        _respond(writer, 404, [b"not found"])
        await writer.drain()
        return True

    async def _sse_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = secrets.token_hex(8)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        _write_chunk(writer, [b"event: endpoint\ndata: /messages?session=" + session.encode() + b"\n\n"])
        self.sse_streams[session] = writer
        try:
            await writer.drain()
            while await reader.read(65536):  # the client sends nothing more; EOF ends the session
                pass
        finally:
            del self.sse_streams[session]

    async def _streamable(
        self, writer: asyncio.StreamWriter, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> None:
        session = headers.get("mcp-session-id")
        if method == "DELETE":
            self.mcp_sessions.discard(session or "")
            _respond(writer, 200, [])
        elif method != "POST":
            _respond(writer, 405, [b"method not allowed"])
        elif b'"initialize"' not in body[:200] and session not in self.mcp_sessions:
            _respond(writer, 404 if session else 400, [b"unknown or missing session"])
        else:
            reply = self.answer(body)
            extra = b""
            if b'"method":"initialize"' in body or b'"method": "initialize"' in body:
                session = secrets.token_hex(8)
                self.mcp_sessions.add(session)
                extra = b"mcp-session-id: " + session.encode() + b"\r\n"
            if reply is None:
                _respond(writer, 202, [], extra=extra)
            elif path == "/mcp-sse":
                _respond(
                    writer, 200, [b"event: message\ndata: ", *reply, b"\n\n"], "text/event-stream", extra
                )
            else:
                _respond(writer, 200, reply, "application/json", extra)
        await writer.drain()


def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: list[bytes],
    ctype: str = "text/plain",
    extra: bytes = b"",
) -> None:
    reason = {
        200: b"OK",
        202: b"Accepted",
        400: b"Bad Request",
        401: b"Unauthorized",
        404: b"Not Found",
        405: b"Method Not Allowed",
    }
    writer.write(
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n"
        % (status, reason.get(status, b"X"), ctype.encode(), sum(map(len, body)), extra)
    )
    for part in body:  # one write each: writelines would join them into one more copy
        writer.write(part)


def _write_chunk(writer: asyncio.StreamWriter, parts: list[bytes]) -> None:
    writer.write(b"%x\r\n" % sum(map(len, parts)))
    for part in parts:
        writer.write(part)
    writer.write(b"\r\n")


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def serve(port: int, bearer: str | None = None) -> None:
    server_state = Server(bearer)
    server = await asyncio.start_server(server_state.connection, HOST, port, backlog=512)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"READY {bound}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # The parent closing our stdin also ends us, so an orphaned server never lingers.
    loop.run_in_executor(None, sys.stdin.buffer.read).add_done_callback(lambda _: stop.set())
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bearer", help="answer 401 to any request without this bearer token")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.bearer))


if __name__ == "__main__":
    main()
