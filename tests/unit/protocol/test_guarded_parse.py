"""Large messages are routed undecoded; decoding one later fails as `InvalidMessage`, never as a crash."""

from __future__ import annotations

import pytest

from mcp_sse_proxy.protocol.messages import LAZY_THRESHOLD, PARSE_ERROR, InvalidMessage, Kind, parse

DEEP = b"[" * LAZY_THRESHOLD + b"]" * LAZY_THRESHOLD


def test_a_deep_large_request_is_routed_then_fails_to_decode_as_invalid_message() -> None:
    message = parse(b'{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"x":' + DEEP + b"}}")
    assert message.kind is Kind.REQUEST and message.id == 4 and not message.is_parsed
    with pytest.raises(InvalidMessage) as caught:
        _ = message.params
    assert caught.value.code == PARSE_ERROR and caught.value.id == 4


def test_a_large_line_with_invalid_utf8_is_refused_with_its_id() -> None:
    line = b'{"jsonrpc":"2.0","id":"r","result":{"text":"' + b"\xff" * LAZY_THRESHOLD + b'"}}'
    with pytest.raises(InvalidMessage) as caught:
        parse(line)
    assert caught.value.code == PARSE_ERROR and caught.value.id == "r"


@pytest.mark.parametrize(
    "line", [b"[" + DEEP + b"]", b'{"jsonrpc":"2.0","method":"n","params":' + DEEP + b"}"]
)
def test_deep_lines_that_cannot_be_peeked_are_refused_at_once(line: bytes) -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse(line)
    assert caught.value.code == PARSE_ERROR
