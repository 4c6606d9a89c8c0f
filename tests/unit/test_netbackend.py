"""netbackend.AsyncioBackend against real sockets on 127.0.0.1: reads, writes, timeouts, EOF, a closed
idle keep-alive connection, and connect errors; and httpx2 over it (the way httpclient uses it)."""

from __future__ import annotations

import asyncio
import socket

import httpcore2
import httpx2
import pytest

from mcp_sse_proxy import netbackend
from mcp_sse_proxy.httpclient import _plain_transport
from mcp_sse_proxy.netbackend import AsyncioBackend


async def _server(handler):  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_read_write_and_eof() -> None:
    async def main() -> None:
        async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readexactly(5))
            await writer.drain()
            writer.close()

        server, port = await _server(echo_once)
        async with server:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            await stream.write(b"hello", timeout=5)
            assert await stream.read(2, timeout=5) == b"he"  # a chunk larger than asked is split
            assert await stream.read(100, timeout=5) == b"llo"
            assert await stream.read(100, timeout=5) == b""  # EOF
            assert stream.get_extra_info("is_readable") is True
            await stream.aclose()

    asyncio.run(main())


def test_read_timeout() -> None:
    async def main() -> None:
        done = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await done.wait()
            writer.close()

        server, port = await _server(silent)
        async with server:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            assert stream.get_extra_info("is_readable") is False
            with pytest.raises(httpcore2.ReadTimeout):
                await stream.read(10, timeout=0.05)
            done.set()
            await stream.aclose()

    asyncio.run(main())


def test_write_after_close_and_connect_error() -> None:
    async def main() -> None:
        async def closer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server, port = await _server(closer)
        async with server:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            assert await stream.read(10, timeout=5) == b""
            with pytest.raises(httpcore2.WriteError):
                await stream.write(b"x", timeout=5)
        with socket.socket() as probe:  # a port with nothing listening
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        with pytest.raises(httpcore2.ConnectError):
            await AsyncioBackend().connect_tcp("127.0.0.1", free, timeout=5)

    asyncio.run(main())


def test_reading_pauses_above_the_high_water_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netbackend, "READ_HIGH_WATER", 64 * 1024)

    async def main() -> None:
        payload = bytes(range(256)) * 8192  # 2 MiB

        async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(payload)
            await writer.drain()
            writer.close()

        server, port = await _server(flood)
        async with server:
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
            # Time for the server to write what it can: what is checked is that the read-ahead does NOT
            # go past the mark, an absence nothing can signal (not synchronisation; no timing asserted).
            await asyncio.sleep(0.2)
            assert stream._buffered <= 64 * 1024 + 256 * 1024  # at most one read past the mark
            received = bytearray()
            while chunk := await stream.read(65536, timeout=5):
                received += chunk
            assert bytes(received) == payload

    asyncio.run(main())


@pytest.mark.parametrize("backend", ["asyncio", "anyio"])
def test_httpx2_keepalive_survives_a_server_closing_idle_connections(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool must see an idle connection the server closed (is_readable) and open a new one."""
    monkeypatch.setenv("MCP_SSE_PROXY_ASYNCIO_NETWORK", "1" if backend == "asyncio" else "0")

    async def main() -> None:
        connections = 0
        closed: asyncio.Queue[None] = asyncio.Queue()

        async def one_response_per_connection(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            nonlocal connections
            connections += 1
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
            await writer.drain()
            writer.close()  # without "Connection: close": the client thinks it may reuse it
            await writer.wait_closed()
            closed.put_nowait(None)

        server, port = await _server(one_response_per_connection)
        async with server:
            limits = httpx2.Limits(max_connections=4, max_keepalive_connections=4)
            async with httpx2.AsyncClient(transport=_plain_transport(limits)) as client:
                for _ in range(3):
                    resp = await client.get(f"http://127.0.0.1:{port}/")
                    assert resp.text == "ok"
                    # The server has closed its end: the close reaches the client while idle.
                    await asyncio.wait_for(closed.get(), timeout=10)
        assert connections == 3

    asyncio.run(main())


def test_the_asyncio_backend_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_SSE_PROXY_ASYNCIO_NETWORK", raising=False)
    assert isinstance(_plain_transport(httpx2.Limits())._pool._network_backend, AsyncioBackend)
    monkeypatch.setenv("MCP_SSE_PROXY_ASYNCIO_NETWORK", "0")
    assert not isinstance(_plain_transport(httpx2.Limits())._pool._network_backend, AsyncioBackend)


@pytest.mark.parametrize("backend", ["asyncio", "anyio"])
@pytest.mark.parametrize("death", ["close", "reset"])
def test_a_server_dying_mid_stream_ends_the_stream(
    backend: str, death: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SSE-style chunked response whose server dies (FIN, or RST) after one event: the reader gets the
    event, then an error, promptly and on either backend (the relay treats it as the stream failing)."""
    monkeypatch.setenv("MCP_SSE_PROXY_ASYNCIO_NETWORK", "1" if backend == "asyncio" else "0")

    async def main() -> None:
        sent = asyncio.Event()

        async def dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            event = b"data: hello\n\n"
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n%s\r\n" % (len(event), event)
            )
            await writer.drain()
            await sent.wait()
            if death == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            writer.transport.abort() if death == "reset" else writer.close()

        server, port = await _server(dies)
        async with server:
            limits = httpx2.Limits(max_connections=4, max_keepalive_connections=4)
            async with httpx2.AsyncClient(transport=_plain_transport(limits)) as client:
                async with client.stream("GET", f"http://127.0.0.1:{port}/sse") as response:
                    chunks = response.aiter_raw()
                    assert await asyncio.wait_for(chunks.__anext__(), 5) == b"data: hello\n\n"
                    sent.set()
                    with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
                        await asyncio.wait_for(chunks.__anext__(), 5)

    asyncio.run(main())


def test_connections_sharing_the_receive_buffer_keep_their_own_bytes() -> None:
    """One receive buffer serves every connection of a backend: each chunk is copied out before the
    next receive, so interleaved and larger-than-the-buffer bodies arrive intact on each connection."""
    size = netbackend.RECEIVE_BUFFER * 3 + 17

    async def main() -> None:
        async def send_pattern(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            tag = await reader.readexactly(1)
            body = tag * size
            for start in range(0, size, 4096):  # many small writes, so the two connections interleave
                writer.write(body[start : start + 4096])
                await writer.drain()
            writer.close()

        server, port = await _server(send_pattern)
        async with server:
            backend = AsyncioBackend()
            streams = [await backend.connect_tcp("127.0.0.1", port, timeout=5) for _ in range(2)]

            async def read_all(stream: httpcore2.AsyncNetworkStream, tag: bytes) -> bytes:
                await stream.write(tag, timeout=5)
                parts = []
                for _ in range(size):  # bounded: at least one byte per read until EOF
                    chunk = await stream.read(65536, timeout=5)
                    if not chunk:
                        break
                    parts.append(chunk)
                return b"".join(parts)

            first, second = await asyncio.gather(read_all(streams[0], b"a"), read_all(streams[1], b"b"))
            assert first == b"a" * size
            assert second == b"b" * size
            for stream in streams:
                await stream.aclose()

    asyncio.run(main())
