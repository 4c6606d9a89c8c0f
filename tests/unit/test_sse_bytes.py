"""The bytes-level SSE decoder against `httpx2.EventSource` (as `http.reference_event_source` runs it):
the same events, in the same order, and the same size-limit error, for random streams split at random."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.messages import parse
from mcp_sse_proxy.transports.http import event_message, event_source, reference_event_source
from mcp_sse_proxy.transports.sse_bytes import EventDecoder, RawEvent, aiter_events, is_utf8_stream

BIG = 1 << 30


class _Chunks(httpx2.AsyncByteStream):
    def __init__(self, chunks: Sequence[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


def _response(chunks: Sequence[bytes], content_type: str = "text/event-stream") -> httpx2.Response:
    return httpx2.Response(
        200,
        headers={"content-type": content_type},
        stream=_Chunks(chunks),
        request=httpx2.Request("GET", "http://127.0.0.1/sse"),
    )


async def _outcome(source: object) -> list[tuple[object, ...]]:
    seen: list[tuple[object, ...]] = []
    try:
        async for sse in source:  # type: ignore[attr-defined]
            data = sse.data.decode() if isinstance(sse.data, bytes) else sse.data
            seen.append((sse.event, data, sse.id, sse.retry))
    except httpx2.SSEError as exc:
        seen.append(("error", str(exc)))
    return seen


def _both(
    chunks: Sequence[bytes], limit: int = BIG
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    reference = asyncio.run(_outcome(reference_event_source(_response(chunks), limit)))
    fast = asyncio.run(_outcome(event_source(_response(chunks), limit)))
    # Every line longer than 2 bytes through the long-line path (its value collected apart) as well:
    long_lines = asyncio.run(_outcome(aiter_events(_response(chunks), limit, big_line=2)))
    assert long_lines == fast
    return reference, fast


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    return [stream[a:b] for a, b in zip(points, points[1:], strict=False)]


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
_value = st.one_of(
    _text, st.sampled_from(["", " ", "  x", "12", "-3", "+4", " 7", "1_0", "x\0y", "\ufeff", "é€𝄞"])
)
_field = st.sampled_from(["data", "event", "id", "retry", "", "dat", "Data", "\ufeffdata", "x"])


@st.composite
def _line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["field", "field", "field", "bare", "comment", "blank", "blank"]))
    if kind == "blank":
        return ""
    if kind == "comment":
        return ":" + draw(_text)
    if kind == "bare":  # a field name alone: its value is empty
        return draw(_field)
    return draw(_field) + draw(st.sampled_from([":", ": ", ":  "])) + draw(_value)


@st.composite
def _stream(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_line(), max_size=25))
    ending = st.sampled_from(["\n", "\r", "\r\n"])
    text = "".join(line + draw(ending) for line in lines)
    if draw(st.booleans()):
        text += draw(_line())  # an unterminated last line
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode()


_cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)
_settings = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(_stream(), _cuts)
def test_same_events_as_event_source(stream: bytes, cuts: list[int]) -> None:
    reference, fast = _both(_split(stream, cuts))
    assert fast == reference


@_settings
@given(_stream(), _cuts, st.integers(min_value=0, max_value=120))
def test_same_size_limit_as_event_source(stream: bytes, cuts: list[int], limit: int) -> None:
    reference, fast = _both(_split(stream, cuts), limit)
    assert fast == reference


@_settings
@given(
    st.lists(
        st.sampled_from(
            [
                b"data: ",
                b"data:",
                b"id: 1",
                b"\n",
                b"\r",
                b"\r\n",
                b":",
                b"\xe2\x82",
                b"\xac",
                b"\xff",
                b"\xc3",
                b"\xf0\x9f",
                b"x",
                b"event: e",
            ]
        ),
        max_size=40,
    ),
    _cuts,
)
def test_same_events_on_any_bytes(parts: list[bytes], cuts: list[int]) -> None:
    """Invalid UTF-8 included: it reads as U+FFFD in both (the size limit is not compared here)."""
    reference, fast = _both(_split(b"".join(parts), cuts))
    assert fast == reference


@pytest.mark.parametrize("ending", [b"\n", b"\r", b"\r\n"])
def test_large_event_in_small_chunks(ending: bytes) -> None:
    payload = b'{"jsonrpc":"2.0","id":1,"result":{"text":"' + b"x\\\\y\\u00e9" * 50_000 + b'"}}'
    stream = b": ping" + ending + b"event: message" + ending + b"data: " + payload + ending + ending
    reference, fast = _both(_split(stream, list(range(0, len(stream), 4093))))
    assert fast == reference and len(fast) == 1 and fast[0][1] == payload.decode()


def test_data_is_bytes_copied_once_and_parses() -> None:
    decoder = EventDecoder(None)
    events = list(decoder.feed(b'event: message\ndata: {"jsonrpc":"2.0","id":3,"result":{}}\n\n'))
    assert events == [RawEvent("message", b'{"jsonrpc":"2.0","id":3,"result":{}}', "", None)]
    assert parse(event_message(events[0].data)).id == 3


def test_event_message_keeps_text_semantics_for_bom_and_nul() -> None:
    """json.loads accepts a UTF-8 BOM in bytes but not in text: the data is handed over as text."""
    with pytest.raises(Exception, match="BOM|invalid"):
        parse(event_message(b'\xef\xbb\xbf{"jsonrpc":"2.0","id":1,"result":{}}'))
    assert isinstance(event_message(b'{\x00"a":1}'), str)


@pytest.mark.parametrize(
    ("content_type", "fast"),
    [
        ("text/event-stream", True),
        ("text/event-stream; charset=utf-8", True),
        ("text/event-stream; charset=UTF8", True),
        ("text/event-stream; charset=iso-8859-1", False),
    ],
)
def test_other_charsets_use_event_source(content_type: str, fast: bool) -> None:
    assert is_utf8_stream(_response([], content_type)) is fast
    source = event_source(_response([], content_type), BIG)
    assert isinstance(source, httpx2.EventSource) is not fast


def test_size_limit_leaves_out_a_character_split_across_chunks() -> None:
    """EventSource's text decoder holds back the first byte of a split 'é': a pending comment of 7
    decoded bytes is within a 7-byte limit, although 8 raw bytes have arrived."""
    chunks = [b":" + "ééé".encode() + b"\xc3", b"\xa9\ndata: x\n\n"]
    reference, fast = _both(chunks, 7)
    assert fast == reference == [("message", "x", "", None)]


def test_size_limit_of_a_long_line_arriving_in_pieces() -> None:
    """A line collected apart (the long-line path, here for any line over 2 bytes) still leaves a split
    character's first byte out of its pending size, whichever piece it ends."""
    chunks = [b":aaa", b"aaa\xc3", b"\xa9\ndata: x\n\n"]
    reference, fast = _both(chunks, 7)
    assert fast == reference == [("message", "x", "", None)]
    data = [b"data: " + b"x" * 9, b"\xe2\x82", b"\xac\n", b"\n"]
    reference, fast = _both(data, 20)
    assert fast == reference == [("message", "x" * 9 + "€", "", None)]
