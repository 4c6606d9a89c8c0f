"""transports.streamable_post.read_limited: the bounded read of a JSON body (raw when not encoded, decoded
when it is), refusing an over-long body by its Content-Length before reading it."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import anyio
import httpx2
import pytest

from mcp_sse_proxy.errors import UpstreamError
from mcp_sse_proxy.transports.streamable_post import read_limited


class _Body(httpx2.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk


def _read(body: _Body, headers: dict[str, str], limit: int) -> bytes:
    async def main() -> bytes:
        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(200, headers=headers, stream=body)

        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as client:
            async with client.stream("POST", "http://upstream.test/mcp") as resp:
                return await read_limited(resp, limit)

    return anyio.run(main)


def test_chunks_are_joined_once() -> None:
    body = _Body([b'{"a":', b'"b"', b"}"])
    assert _read(body, {}, 100) == b'{"a":"b"}'


def test_a_single_chunk_is_returned_as_is() -> None:
    assert _read(_Body([b"{}"]), {}, 100) == b"{}"


def test_over_the_limit_while_reading() -> None:
    body = _Body([b"x" * 60, b"x" * 60, b"x" * 60])
    with pytest.raises(UpstreamError, match="maximum message size"):
        _read(body, {}, 100)
    assert body.read == 2  # stopped at the chunk that crossed the limit


def test_over_the_limit_by_content_length_reads_nothing() -> None:
    body = _Body([b"x" * 200])
    with pytest.raises(UpstreamError, match="maximum message size"):
        _read(body, {"Content-Length": "200"}, 100)
    assert body.read == 0


def test_an_encoded_body_is_decoded_and_bounded_decoded() -> None:
    packed = gzip.compress(b'{"k":"' + b"v" * 1000 + b'"}')
    assert _read(_Body([packed]), {"Content-Encoding": "gzip"}, 2000).startswith(b'{"k":"vvv')
    with pytest.raises(UpstreamError, match="maximum message size"):
        _read(_Body([packed]), {"Content-Encoding": "gzip"}, 500)  # small on the wire, large decoded


def test_a_body_httpx2_already_read_is_returned() -> None:
    async def main() -> bytes:
        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(401, stream=_Body([b'{"error":', b"1}"]))

        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as client:
            async with client.stream("POST", "http://upstream.test/mcp") as resp:
                await resp.aread()  # as an auth flow does with a 401
                return await read_limited(resp, 100)

    assert anyio.run(main) == b'{"error":1}'
