"""LineFramer: newline framing of the stdio byte stream, fed in arbitrary chunks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.framing import LineFramer


def run(framer: LineFramer, chunks: list[bytes]) -> tuple[list[bytes], int]:
    """Feed every chunk, then finish; all lines and the total drop count."""
    lines: list[bytes] = []
    dropped = 0
    for chunk in chunks:
        got, n = framer.feed(chunk)
        lines += got
        dropped += n
    lines += framer.finish()
    return lines, dropped


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def model(stream: bytes, max_line: int) -> tuple[list[bytes], int]:
    """What the framer should produce for a whole stream, written independently of its buffering."""
    segments = stream.split(b"\n")
    lines: list[bytes] = []
    dropped = 0
    for segment in segments:
        if len(segment) > max_line:
            dropped += 1
            continue
        if segment.endswith(b"\r"):
            segment = segment[:-1]
        if segment.strip():
            lines.append(segment)
    return lines, dropped


# -- basics -----------------------------------------------------------------------------------------


def test_single_chunk_with_several_lines() -> None:
    framer = LineFramer(100)
    assert framer.feed(b'{"a":1}\n{"b":2}\n') == ([b'{"a":1}', b'{"b":2}'], 0)
    assert framer.finish() == []


def test_incomplete_line_waits_for_its_newline() -> None:
    framer = LineFramer(100)
    assert framer.feed(b'{"a":') == ([], 0)
    assert framer.feed(b"1}") == ([], 0)
    assert framer.feed(b"\n") == ([b'{"a":1}'], 0)


def test_crlf_is_stripped() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"one\r\ntwo\r\n") == ([b"one", b"two"], 0)


def test_crlf_split_between_cr_and_lf() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"one\r") == ([], 0)
    assert framer.feed(b"\ntwo\n") == ([b"one", b"two"], 0)


def test_only_one_trailing_cr_is_stripped() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"x\r\r\n") == ([b"x\r"], 0)


@pytest.mark.parametrize("blank", [b"\n", b"\r\n", b"   \n", b"\t\r\n", b"\n\n\n"])
def test_blank_lines_are_skipped(blank: bytes) -> None:
    framer = LineFramer(100)
    assert framer.feed(b"a\n" + blank + b"b\n") == ([b"a", b"b"], 0)


def test_finish_returns_last_line_without_newline() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"a\nlast") == ([b"a"], 0)
    assert framer.finish() == [b"last"]


def test_finish_strips_cr_and_skips_blank_tail() -> None:
    framer = LineFramer(100)
    framer.feed(b"last\r")
    assert framer.finish() == [b"last"]
    framer = LineFramer(100)
    framer.feed(b"a\n  ")
    assert framer.finish() == []


def test_finish_on_empty_stream_and_twice() -> None:
    framer = LineFramer(100)
    assert framer.finish() == []
    framer.feed(b"tail")
    assert framer.finish() == [b"tail"]
    assert framer.finish() == []


def test_empty_chunk_is_harmless() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"") == ([], 0)
    framer.feed(b"ab")
    assert framer.feed(b"") == ([], 0)
    assert framer.feed(b"\n") == ([b"ab"], 0)


def test_returned_lines_are_bytes_not_views_of_the_buffer() -> None:
    framer = LineFramer(100)
    framer.feed(b"ab")
    lines, _ = framer.feed(b"c\n")
    framer.feed(b"zzzz")
    assert lines == [b"abc"]
    assert all(type(line) is bytes for line in lines)


@pytest.mark.parametrize("cut", range(0, 16))
def test_line_split_at_every_position(cut: int) -> None:
    data = b'{"id":1}\r\n{"x":2}'
    framer = LineFramer(100)
    assert run(framer, [data[:cut], data[cut:]]) == ([b'{"id":1}', b'{"x":2}'], 0)


def test_line_fed_byte_by_byte() -> None:
    data = b'{"jsonrpc":"2.0","method":"m"}\r\n\n{"b":1}\n'
    framer = LineFramer(100)
    assert run(framer, [data[i : i + 1] for i in range(len(data))]) == (
        [b'{"jsonrpc":"2.0","method":"m"}', b'{"b":1}'],
        0,
    )


# -- length limit ----------------------------------------------------------------------------------


def test_line_of_exactly_max_length_is_kept() -> None:
    line = b"x" * 10
    assert LineFramer(10).feed(line + b"\n") == ([line], 0)


def test_line_of_exactly_max_length_split_is_kept() -> None:
    line = b"x" * 10
    framer = LineFramer(10)
    assert framer.feed(line[:4]) == ([], 0)
    assert framer.feed(line[4:]) == ([], 0)
    assert framer.feed(b"\n") == ([line], 0)


def test_last_line_of_exactly_max_length_without_newline_is_kept() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"x" * 10) == ([], 0)
    assert framer.finish() == [b"x" * 10]


def test_line_one_over_max_in_one_chunk_is_dropped_once() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"a\n" + b"x" * 11 + b"\nb\n") == ([b"a", b"b"], 1)
    assert framer.finish() == []


def test_over_long_line_in_many_chunks_is_dropped_once() -> None:
    framer = LineFramer(10)
    total = 0
    lines: list[bytes] = []
    for chunk in [b"ok\n" + b"x" * 6, b"x" * 6, b"x" * 50, b"x" * 3, b"\nafter\n"]:
        got, n = framer.feed(chunk)
        lines += got
        total += n
    assert (lines, total) == ([b"ok", b"after"], 1)


def test_over_long_line_counted_when_it_crosses_the_limit_not_at_newline() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"x" * 11) == ([], 1)
    assert framer.feed(b"x" * 100) == ([], 0)
    assert framer.feed(b"\n") == ([], 0)
    assert framer.feed(b"next\n") == ([b"next"], 0)


def test_over_long_unterminated_last_line_is_dropped_once_and_not_returned() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"x" * 8) == ([], 0)
    assert framer.feed(b"x" * 8) == ([], 1)
    assert framer.finish() == []


def test_framer_recovers_after_finish_while_discarding() -> None:
    framer = LineFramer(4)
    framer.feed(b"xxxxxxx")
    framer.finish()
    assert framer.feed(b"ok\n") == ([b"ok"], 0)


def test_two_over_long_lines_count_two() -> None:
    framer = LineFramer(4)
    assert run(framer, [b"xxxxx\nyy", b"yyyyy\nzz\n"]) == ([b"zz"], 2)


def test_ten_megabyte_line_with_64_mib_limit() -> None:
    payload = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"s":"' + b"a" * (10 * 1024 * 1024)
    payload += b'"}}'
    framer = LineFramer(64 * 1024 * 1024)
    chunk = 64 * 1024
    pieces = [payload[i : i + chunk] for i in range(0, len(payload), chunk)] + [b"\n"]
    lines, dropped = run(framer, pieces)
    assert dropped == 0
    assert len(lines) == 1 and lines[0] == payload


def test_ten_megabyte_line_in_one_chunk() -> None:
    payload = b"b" * (10 * 1024 * 1024)
    assert LineFramer(64 * 1024 * 1024).feed(payload + b"\n") == ([payload], 0)


# -- properties -------------------------------------------------------------------------------------

line_bytes = st.binary(max_size=24).map(lambda b: b.replace(b"\n", b""))


@given(
    lines=st.lists(line_bytes, max_size=12),
    terminators=st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=12, max_size=12),
    final_newline=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    max_line=st.integers(min_value=1, max_value=20),
)
def test_any_chunking_matches_the_whole_stream_model(
    lines: list[bytes],
    terminators: list[bytes],
    final_newline: bool,
    cuts: list[int],
    max_line: int,
) -> None:
    stream = b"".join(line + term for line, term in zip(lines, terminators, strict=False))
    if lines and not final_newline:
        stream = stream[: -len(terminators[len(lines) - 1])]
    assert run(LineFramer(max_line), split_at(stream, cuts)) == model(stream, max_line)


@given(
    stream=st.binary(max_size=200),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=20),
    max_line=st.integers(min_value=1, max_value=30),
)
def test_chunking_never_changes_the_output(stream: bytes, cuts: list[int], max_line: int) -> None:
    whole = run(LineFramer(max_line), [stream])
    assert run(LineFramer(max_line), split_at(stream, cuts)) == whole
    assert whole == model(stream, max_line)


@given(stream=st.binary(max_size=200), max_line=st.integers(min_value=1, max_value=30))
def test_output_lines_respect_the_contract(stream: bytes, max_line: int) -> None:
    lines, _ = run(LineFramer(max_line), [stream[i : i + 3] for i in range(0, len(stream), 3)])
    for line in lines:
        assert b"\n" not in line
        assert len(line) <= max_line
        assert line.strip()
