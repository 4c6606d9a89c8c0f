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

import io
from collections.abc import AsyncIterator, Iterator
from typing import NamedTuple

import httpx2

_DATA = b"data"
_EVENT = b"event"
_ID = b"id"
_RETRY = b"retry"
_COLON = 0x3A
_SPACE = 0x20
#: A line still arriving that has grown past this many bytes has its value collected apart, in a
#: `BytesIO` (which hands its bytes over without a copy): a 4 MB data line is then held once, not once
#: in the receive buffer and once more as its copied-out value.
BIG_LINE = 1 << 16


class RawEvent(NamedTuple):
    """One event; like `httpx2.ServerSentEvent`, but `data` is the UTF-8 bytes of its text."""

    event: str
    data: bytes
    id: str
    retry: int | None


def _incomplete_tail(buf: bytes | bytearray) -> int:
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

    def __init__(self, max_event_size: int | None, big_line: int = BIG_LINE) -> None:
        self._max = max_event_size
        self._big_line = big_line
        self._buf = bytearray()
        #: A long line in progress (while `_long_size` > 0): its value so far (None for a comment, whose
        #: value is dropped), the bytes before the value (field name, colon, optional space), its size so
        #: far and its last bytes.
        self._long: io.BytesIO | None = None
        self._long_head = b""
        self._long_size = 0
        self._long_tail = b""
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
        if self._long_size:
            end = chunk.find(b"\n")
            self._grow_long(chunk if end < 0 else memoryview(chunk)[:end])
            if end < 0:
                self._check(self._long_size - _incomplete_tail(self._long_tail))
                return
            self._end_long()
            chunk = chunk[end + 1 :]
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
        if len(buf) > self._big_line:
            self._start_long(buf)
        if self._long_size:
            self._check(self._long_size - _incomplete_tail(self._long_tail))
        else:
            self._check(len(buf) - _incomplete_tail(buf))

    def flush(self) -> Iterator[RawEvent]:
        """The end of the stream: an unterminated last line is read as a line (and dispatches nothing)."""
        if self._long_size:
            self._end_long()
            return
        buf = self._buf
        if buf:
            event = self._line(buf, 0, len(buf))
            buf.clear()
            if event is not None:
                yield event

    def _check(self, pending: int = 0) -> None:
        if self._max is not None and self._size + pending > self._max:
            raise httpx2.SSEError(f"Server-sent event exceeded the {self._max} byte limit.")

    def _start_long(self, buf: bytearray) -> None:
        """Move the long line that `buf` holds (with no LF yet) out of the receive buffer, once its value
        has begun (the byte after the colon tells whether a space is to be skipped)."""
        if buf[0] != _COLON:  # a comment keeps nothing but its size
            colon = buf.find(b":")
            if colon < 0 or colon + 1 >= len(buf):
                return  # a field name still arriving, or its value not begun: keep it in the buffer
            value_at = colon + 2 if buf[colon + 1] == _SPACE else colon + 1
            self._long_head = bytes(buf[:value_at])
            self._long = io.BytesIO()
            with memoryview(buf) as view:
                self._long.write(view[value_at:])
        self._long_size = len(buf)
        self._long_tail = bytes(buf[-4:])
        buf.clear()

    def _grow_long(self, part: bytes | memoryview) -> None:
        if self._long is not None:
            self._long.write(part)
        self._long_size += len(part)
        self._long_tail = (self._long_tail + bytes(part[-4:]))[-4:]

    def _end_long(self) -> None:
        """The long line is complete (its LF arrived, or the stream ended)."""
        long, self._long = self._long, None
        size, self._long_size = self._long_size, 0
        head, self._long_head = self._long_head, b""
        self._long_tail = b""
        if long is None:
            return  # a comment: nothing to keep, and not counted
        value = long.getvalue()  # no copy: the BytesIO gives up its buffer
        del long
        name = head[: head.index(b":")]
        if not _is_utf8(name, value):
            name, value, size = _replaced(head + value)
        self._field(name, value, size)

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
            value = bytes(view[value_at:end])  # the one copy of a data line
        size = end - start
        if not _is_utf8(name, value):
            name, value, size = _replaced(bytes(buf[start:end]))
        self._field(name, value, size)
        return None

    def _field(self, name: bytes, value: bytes, size: int) -> None:
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


def _is_utf8(name: bytes, value: bytes) -> bool:
    if name.isascii() and value.isascii():
        return True  # the common case, without decoding
    try:
        name.decode()
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


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


async def aiter_events(
    response: httpx2.Response, max_event_size: int | None, big_line: int = BIG_LINE
) -> AsyncIterator[RawEvent]:
    """The events of a UTF-8 event stream (the caller has checked the content type)."""
    decoder = EventDecoder(max_event_size, big_line)
    try:
        async for chunk in response.aiter_bytes():
            for event in decoder.feed(chunk):
                yield event
                del event  # not kept alive (a large one) while the next chunk is awaited
            del chunk
        for event in decoder.flush():
            yield event
    except httpx2.SSEError as exc:
        exc.request = response.request
        raise
