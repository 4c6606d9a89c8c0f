"""What one Streamable HTTP POST carries and what comes back on it: the exchange record (the request ids
still unanswered, where replies go), the size-bounded read of a JSON body, and error bodies."""

from __future__ import annotations

import io

import httpx2

from ..errors import UpstreamError
from ..protocol.messages import InvalidMessage, Kind, Message, modern_version, parse
from .base import Deliver

#: Codes only a 2026-07-28 server sends; a probe answered with one found an MCP endpoint.
MODERN_ERROR_CODES = frozenset({-32020, -32021, -32022})


def request_ids(message: Message) -> set[object]:
    if message.kind is Kind.REQUEST:
        return {message.id}
    if message.kind is Kind.BATCH:
        return {
            item.get("id")
            for item in message.body
            if isinstance(item, dict) and "method" in item and item.get("id") is not None
        }
    return set()


class Exchange:
    """One POST and what it waits for: the request ids still unanswered, and where replies go."""

    __slots__ = ("sent", "wanted", "deliver", "modern_version", "mismatch", "streaming", "last_event_id")

    def __init__(self, sent: Message, deliver: Deliver) -> None:
        self.sent = sent
        self.wanted = request_ids(sent)
        self.deliver = deliver
        self.modern_version = modern_version(sent)
        #: A HeaderMismatch error held back while the tool list is re-read and the call retried.
        self.mismatch: Message | None = None
        self.streaming = False
        self.last_event_id: str | None = None


def _too_large(limit: int) -> UpstreamError:
    return UpstreamError(f"the server's reply exceeds the maximum message size ({limit} bytes)")


async def read_limited(resp: httpx2.Response, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (`UpstreamError` beyond, before reading on).

    A body without Content-Encoding is read as it arrives (`aiter_raw`: no decoder, no re-chunking), and one
    whose Content-Length is already over the limit is refused without reading it. A body httpx2 has read
    already (an auth flow reads a 401's) comes from memory.
    """
    length = resp.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    encoded = resp.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity")
    # A body httpx2 has read already (an auth flow reads a 401's) is only available decoded.
    decoded = encoded or resp.is_stream_consumed
    first = b""
    body: io.BytesIO | None = None
    size = 0
    async for chunk in resp.aiter_bytes() if decoded else resp.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        if not first:
            first = chunk
            continue
        if body is None:
            body = io.BytesIO()
            body.write(first)
        body.write(chunk)
    # BytesIO grows one bytes object in place and hands it over without a copy: a large body is held
    # once (a list of chunks and their join would hold it twice at the peak).
    return first if body is None else body.getvalue()


def is_modern_error(status: int, error: Message | None) -> bool:
    """A recognised 2026-07-28 error: this URL is an MCP endpoint, whatever the status says."""
    if error is None:
        return False
    code = error.body["error"].get("code")
    return code in MODERN_ERROR_CODES or (status == 404 and code == -32601)


def jsonrpc_error(body: bytes) -> Message | None:
    if not body.strip():
        return None
    try:
        reply = parse(body)
    except InvalidMessage:
        return None
    if reply.kind is Kind.RESPONSE and isinstance(reply.body.get("error"), dict):
        return reply
    return None
