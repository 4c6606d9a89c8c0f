"""Large messages are routed from their first or last bytes and decoded only on demand."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.messages import LAZY_THRESHOLD, Kind, modern_version, parse

FILLER = "y" * (LAZY_THRESHOLD + 10)
ids = st.one_of(st.integers(min_value=-(2**53), max_value=2**53), st.text(max_size=20))


@settings(max_examples=60)
@given(msg_id=ids, compact=st.booleans(), error=st.booleans())
def test_response_id_and_kind_match_a_full_decode(msg_id: object, compact: bool, error: bool) -> None:
    obj = {"jsonrpc": "2.0", "id": msg_id, ("error" if error else "result"): {"text": FILLER}}
    separators = (",", ":") if compact else (", ", ": ")
    line = json.dumps(obj, separators=separators).encode()
    message = parse(line)
    assert not message.is_parsed
    assert (message.kind, message.id, message.is_error) == (Kind.RESPONSE, msg_id, error)
    assert message.raw == line
    assert message.body == obj  # decoded on first use, equal to a full decode
    assert message.is_parsed


def test_request_with_method_before_params_is_routed_without_decoding() -> None:
    line = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"x": FILLER}}).encode()
    message = parse(line)
    assert (message.kind, message.id, message.method, message.is_parsed) == (
        Kind.REQUEST,
        3,
        "tools/call",
        False,
    )
    assert modern_version(message) is None and not message.is_parsed  # no _meta key: nothing decoded


def test_result_first_layout_reads_the_id_at_the_end() -> None:
    line = json.dumps({"result": {"x": FILLER}, "jsonrpc": "2.0", "id": "z"}).encode()
    message = parse(line)
    assert (message.kind, message.id, message.is_parsed) == (Kind.RESPONSE, "z", False)


@pytest.mark.parametrize(
    "obj",
    [
        {"id": 1, "jsonrpc": "2.0", "result": {"x": FILLER}},  # id first: not a known layout
        {"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": FILLER}},
    ],
)
def test_other_layouts_are_decoded_as_usual(obj: dict[str, object]) -> None:
    message = parse(json.dumps(obj).encode())
    assert message.is_parsed and message.body == obj


def test_small_messages_are_always_decoded() -> None:
    assert parse(b'{"jsonrpc":"2.0","id":1,"result":{}}').is_parsed


def test_a_modern_request_is_recognised_when_large() -> None:
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    line = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"_meta": meta, "x": FILLER}}
    ).encode()
    assert modern_version(parse(line)) == "2026-07-28"
