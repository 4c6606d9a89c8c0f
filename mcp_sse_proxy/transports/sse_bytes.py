"""A bytes-level SSE decoder for UTF-8 event streams, equal to `httpx2.EventSource` as `http.event_source`
uses it (with CR and CRLF read as LF), but without decoding the stream to text.

A 4 MB JSON-RPC result over SSE otherwise goes through httpx2's incremental text decoder, a join of the
partial line, a partition, a slice, a `str.encode` to count its size and another to parse it: half a dozen
copies. Here a data line is copied once, out of the receive buffer, and handed to `messages.parse` as
bytes. Field names, `event`, `id` and `retry` are decoded (they are short); data stays bytes.

tests/test_sse_bytes.py checks it against `httpx2.EventSource` on random streams, random chunk splits,
every line ending, BOMs, comments, `retry`, `id`, multi-line and empty data, and invalid UTF-8. One
difference is allowed: the size bound on a line still arriving counts invalid UTF-8 bytes as they are,
where EventSource counts the replacement characters they decode to (3 bytes each).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import NamedTuple

import httpx2

_DATA = b"data"
_EVENT = b"event"
_ID = b"id"
_RETRY = b"retry"
_COLON = 0x3A
_SPACE = 0x20


class RawEvent(NamedTuple):
    """One event; like `httpx2.ServerSentEvent`, but `data` is the UTF-8 bytes of its text."""

    event: str
    data: bytes
    id: str
    retry: int | None


def _incomplete_tail(buf: bytearray) -> int:
    """How many bytes at the end of `buf` begin a UTF-8 character not yet complete (the text decoder holds
    them back, so EventSource does not count them yet)."""
    for back in range(1, min(4, len(buf)) + 1):
        byte = buf[-back]
        if byte < 0x80:
            return 0
        if byte >= 0xC0:  # a lead byte: 2, 3 or 4 bytes long
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return back if back < need else 0
    return 0


class EventDecoder:
    """Bytes in, events out; pure (no I/O). `feed` and `flush` are generators so that an event before an
    over-long one is still delivered, as EventSource does."""

    def __init__(self, max_event_size: int | None) -> None:
        self._max = max_event_size
        self._buf = bytearray()
        self._after_cr = False
        self._event = ""
        self._data: list[bytes] = []
        self._last_id = ""
        self._retry: int | None = None
        self._pending = False
        self._size = 0

    def feed(self, chunk: bytes) -> Iterator[RawEvent]:
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across chunks
        if b"\r" in chunk:
            self._after_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            self._after_cr = False
        buf = self._buf
        scan = len(buf)  # the buffer before this chunk holds no LF
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", scan)) >= 0:
            event = self._line(buf, start, end)
            if event is not None:
                yield event
            start = scan = end + 1
        if start:
            del buf[:start]
        self._check(len(buf) - _incomplete_tail(buf))

    def flush(self) -> Iterator[RawEvent]:
        """The end of the stream: an unterminated last line is read as a line (and dispatches nothing)."""
        buf = self._buf
        if buf:
            event = self._line(buf, 0, len(buf))
            buf.clear()
            if event is not None:
                yield event

    def _check(self, pending: int = 0) -> None:
        if self._max is not None and self._size + pending > self._max:
            raise httpx2.SSEError(f"Server-sent event exceeded the {self._max} byte limit.")

    def _line(self, buf: bytearray, start: int, end: int) -> RawEvent | None:
        if start == end:
            return self._dispatch()
        if buf[start] == _COLON:
            return None  # a comment
        colon = buf.find(b":", start, end)
        value_at = end if colon < 0 else colon + 1
        if value_at < end and buf[value_at] == _SPACE:
            value_at += 1
        name = bytes(buf[start : end if colon < 0 else colon])
        with memoryview(buf) as view:
            value = bytes(view[value_at:end])  # the one copy of a large data line
        size = end - start
        if not (name.isascii() and value.isascii()):
            try:
                name.decode()
                value.decode()
            except UnicodeDecodeError:
                name, value, size = _replaced(bytes(buf[start:end]))
        self._size += size
        self._check()
        if name == _DATA:
            self._data.append(value)
            self._pending = True
        elif name == _EVENT:
            self._event = value.decode()
            self._pending = True
        elif name == _ID:
            if b"\0" not in value:
                self._last_id = value.decode()
                self._pending = True
        elif name == _RETRY:
            try:
                self._retry = int(value.decode())
                self._pending = True
            except ValueError:
                pass
        return None

    def _dispatch(self) -> RawEvent | None:
        self._size = 0
        if not self._pending:
            return None
        event = RawEvent(self._event or "message", b"\n".join(self._data), self._last_id, self._retry)
        self._event = ""
        self._data = []
        self._retry = None
        self._pending = False
        return event


def _replaced(line: bytes) -> tuple[bytes, bytes, int]:
    """A line with invalid UTF-8, as the text decoder sees it (U+FFFD for each bad sequence): its field
    name, its value and its size. CR and LF are ASCII, so decoding line by line equals decoding the stream."""
    text = line.decode("utf-8", "replace")
    name, _, value = text.partition(":")
    value = value.removeprefix(" ")
    return name.encode(), value.encode(), len(text.encode())


def is_utf8_stream(response: httpx2.Response) -> bool:
    """Whether httpx2 would decode this response as UTF-8 (no charset, or a UTF-8 one)."""
    charset = response.charset_encoding
    return charset is None or charset.lower().replace("_", "-") in ("utf-8", "utf8")


async def aiter_events(response: httpx2.Response, max_event_size: int | None) -> AsyncIterator[RawEvent]:
    """The events of a UTF-8 event stream (the caller has checked the content type)."""
    decoder = EventDecoder(max_event_size)
    try:
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(chunk):
                yield event
        for event in decoder.flush():
            yield event
    except httpx2.SSEError as exc:
        exc.request = response.request
        raise
