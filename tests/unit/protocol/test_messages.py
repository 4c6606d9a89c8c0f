"""JSON-RPC parsing and classification: what the relay routes on, and the errors it answers with."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol import messages
from mcp_sse_proxy.protocol.messages import (
    INVALID_REQUEST,
    PARSE_ERROR,
    InvalidMessage,
    Kind,
    Message,
    classify,
    encode,
    error_response,
    from_obj,
    parse,
)


def invalid(line: bytes | str) -> InvalidMessage:
    with pytest.raises(InvalidMessage) as info:
        parse(line)
    return info.value


# -- standard codes ----------------------------------------------------------------------------------


def test_standard_error_codes() -> None:
    assert (
        messages.PARSE_ERROR,
        messages.INVALID_REQUEST,
        messages.METHOD_NOT_FOUND,
        messages.INVALID_PARAMS,
        messages.INTERNAL_ERROR,
    ) == (-32700, -32600, -32601, -32602, -32603)


# -- classification ----------------------------------------------------------------------------------


@pytest.mark.parametrize("msg_id", [1, 0, -7, 2**63, "1", "", "abc-é"])
def test_request_with_string_or_int_id(msg_id: Any) -> None:
    line = encode({"jsonrpc": "2.0", "id": msg_id, "method": "tools/list"})
    msg = parse(line)
    assert msg.kind is Kind.REQUEST and msg.is_request and not msg.is_response
    assert msg.id == msg_id and type(msg.id) is type(msg_id)
    assert msg.method == "tools/list"


def test_string_and_int_ids_stay_distinct() -> None:
    assert parse(b'{"jsonrpc":"2.0","id":1,"method":"m"}').id == 1
    assert parse(b'{"jsonrpc":"2.0","id":"1","method":"m"}').id == "1"


def test_notification() -> None:
    msg = parse(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert msg.kind is Kind.NOTIFICATION
    assert msg.id is None and msg.method == "notifications/initialized"
    assert not msg.is_request and not msg.is_response


@pytest.mark.parametrize("msg_id", [5, "5", None])
@pytest.mark.parametrize("member", ['"result":{}', '"error":{"code":-32601,"message":"no"}'])
def test_response_with_string_int_or_null_id(msg_id: Any, member: str) -> None:
    msg = parse(f'{{"jsonrpc":"2.0","id":{json.dumps(msg_id)},{member}}}')
    assert msg.kind is Kind.RESPONSE and msg.is_response
    assert msg.id == msg_id and msg.method is None


@pytest.mark.parametrize("bad", ["true", "false", "1.5", "1.0", "[1]", '{"a":1}'])
def test_request_with_non_string_non_int_id_is_refused(bad: str) -> None:
    exc = invalid(f'{{"jsonrpc":"2.0","id":{bad},"method":"m"}}')
    assert exc.code == INVALID_REQUEST
    assert exc.id is None


def test_request_with_null_id_is_refused() -> None:
    assert invalid('{"jsonrpc":"2.0","id":null,"method":"m"}').code == INVALID_REQUEST


@pytest.mark.parametrize("bad", ["true", "false", "2.5", "[]", "{}"])
def test_response_with_bool_or_other_id_is_refused(bad: str) -> None:
    exc = invalid(f'{{"jsonrpc":"2.0","id":{bad},"result":{{}}}}')
    assert exc.code == INVALID_REQUEST and exc.id is None


def test_response_without_id_is_refused() -> None:
    assert invalid('{"jsonrpc":"2.0","result":{}}').code == INVALID_REQUEST


@pytest.mark.parametrize(
    "obj",
    [
        {"id": 3, "method": "m"},
        {"jsonrpc": "1.0", "id": 3, "method": "m"},
        {"jsonrpc": 2.0, "id": 3, "method": "m"},
    ],
)
def test_missing_or_wrong_jsonrpc_is_invalid_request_keeping_the_id(obj: dict[str, Any]) -> None:
    exc = invalid(encode(obj))
    assert exc.code == INVALID_REQUEST
    assert exc.id == 3


def test_missing_jsonrpc_without_readable_id() -> None:
    exc = invalid('{"id":true,"method":"m"}')
    assert exc.code == INVALID_REQUEST and exc.id is None


def test_method_must_be_a_string() -> None:
    exc = invalid('{"jsonrpc":"2.0","id":"x","method":42}')
    assert exc.code == INVALID_REQUEST and exc.id == "x"


def test_object_that_is_no_message_kind() -> None:
    exc = invalid('{"jsonrpc":"2.0","id":9}')
    assert exc.code == INVALID_REQUEST and exc.id == 9


@pytest.mark.parametrize("line", ['"hello"', "42", "3.5", "true", "null"])
def test_non_object_json_is_invalid_request(line: str) -> None:
    exc = invalid(line)
    assert exc.code == INVALID_REQUEST and exc.id is None


@pytest.mark.parametrize(
    "line",
    [b"", b"   ", b"{", b'{"jsonrpc":"2.0",}', b"not json", b"\xff\xfe\x00", b'{"a":1} {"b":2}', b"{'a':1}"],
)
def test_invalid_json_is_parse_error(line: bytes) -> None:
    exc = invalid(line)
    assert exc.code == PARSE_ERROR and exc.id is None
    assert exc.reason == str(exc)


def test_invalid_utf8_is_parse_error() -> None:
    assert invalid(b'{"jsonrpc":"2.0","method":"\xc3\x28"}').code == PARSE_ERROR


def test_empty_batch_is_invalid_request() -> None:
    assert invalid(b"[]").code == INVALID_REQUEST
    assert invalid(b" [ ] ").code == INVALID_REQUEST


def test_batch_is_relayed_as_one_message() -> None:
    line = b'[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]'
    msg = parse(line)
    assert msg.kind is Kind.BATCH
    assert msg.id is None and msg.method is None
    assert msg.raw == line
    assert msg.body == json.loads(line)


def test_batch_items_must_be_messages() -> None:
    with pytest.raises(InvalidMessage) as caught:
        parse(b'[1, 2, "x"]')
    assert caught.value.code == INVALID_REQUEST
    with pytest.raises(InvalidMessage):
        parse(b'[{"jsonrpc":"2.0","method":"a"}, [{"jsonrpc":"2.0","method":"b"}]]')
    ok = parse(b'[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]')
    assert ok.kind is Kind.BATCH


def test_str_and_bytes_lines_parse_alike() -> None:
    text = '{"jsonrpc":"2.0","id":"é","method":"m"}'
    from_str, from_bytes = parse(text), parse(text.encode())
    assert from_str.raw == from_bytes.raw == text.encode("utf-8")
    assert from_str.id == from_bytes.id == "é"


# -- raw bytes ---------------------------------------------------------------------------------------


def test_raw_bytes_are_preserved_when_no_change_is_needed() -> None:
    line = b'{ "jsonrpc" : "2.0", "method":"m", "params":{"z":1,"a":"\\u00e9", "f": 1.50} , "id" : 1 }'
    msg = parse(line)
    assert msg.raw == line


def test_pretty_printed_json_becomes_a_single_line_with_the_same_object() -> None:
    obj = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"text": "a\nb", "n": [1, 2]}}
    pretty = json.dumps(obj, indent=2).replace("\n", "\r\n").encode()
    msg = parse(pretty)
    assert b"\n" not in msg.raw and b"\r" not in msg.raw
    assert json.loads(msg.raw) == obj
    assert msg.body == obj and msg.id == 7


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
        max_leaves=20,
    ),
    st.integers(min_value=0, max_value=4),
)
def test_any_pretty_printed_request_normalises_to_one_equivalent_line(params: Any, indent: int) -> None:
    obj = {"jsonrpc": "2.0", "id": "r", "method": "m", "params": params}
    msg = parse(json.dumps(obj, indent=indent, ensure_ascii=False))
    assert b"\n" not in msg.raw and b"\r" not in msg.raw
    assert json.loads(msg.raw) == obj


# -- building messages -------------------------------------------------------------------------------


def test_encode_is_compact_utf8_single_line() -> None:
    raw = encode({"a": "é\nx", "b": [1, 2]})
    assert raw == '{"a":"é\\nx","b":[1,2]}'.encode()


def test_with_id_rewrites_only_the_id() -> None:
    msg = parse(b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}')
    renamed = msg.with_id("proxy-1")
    assert renamed.id == "proxy-1" and renamed.kind is Kind.REQUEST and renamed.method == "tools/call"
    assert json.loads(renamed.raw) == {**msg.body, "id": "proxy-1"}
    assert msg.id == 1 and msg.body["id"] == 1, "the original must not change"


def test_with_id_on_a_response() -> None:
    msg = parse(b'{"jsonrpc":"2.0","id":"up-3","result":{"ok":true}}')
    back = msg.with_id(3)
    assert back.is_response and back.id == 3
    assert json.loads(back.raw) == {"jsonrpc": "2.0", "id": 3, "result": {"ok": True}}


def test_with_body_reclassifies_and_reencodes() -> None:
    msg = parse(b'{"jsonrpc":"2.0","id":1,"method":"m"}')
    new = msg.with_body({"jsonrpc": "2.0", "method": "n", "params": {"x": 1}})
    assert new.kind is Kind.NOTIFICATION and new.method == "n" and new.id is None
    assert new.raw == b'{"jsonrpc":"2.0","method":"n","params":{"x":1}}'


def test_with_body_refuses_a_non_message() -> None:
    msg = parse(b'{"jsonrpc":"2.0","id":1,"method":"m"}')
    with pytest.raises(InvalidMessage):
        msg.with_body({"id": 1})


def test_params_property() -> None:
    assert parse(b'{"jsonrpc":"2.0","method":"m","params":{"a":1}}').params == {"a": 1}
    assert parse(b'{"jsonrpc":"2.0","method":"m"}').params == {}
    assert parse(b'{"jsonrpc":"2.0","method":"m","params":[1,2]}').params == {}
    assert parse(b'[{"jsonrpc":"2.0","method":"m"}]').params == {}


@pytest.mark.parametrize("msg_id", [4, "4", None])
def test_error_response_shape(msg_id: Any) -> None:
    msg = error_response(msg_id, -32603, "upstream unreachable")
    assert msg.is_response and msg.id == msg_id
    assert json.loads(msg.raw) == {
        "jsonrpc": "2.0",
        "id": msg_id,
        "error": {"code": -32603, "message": "upstream unreachable"},
    }


def test_error_response_with_data() -> None:
    msg = error_response(1, -32602, "bad", data={"supported": ["2025-06-18"]})
    assert msg.body["error"] == {"code": -32602, "message": "bad", "data": {"supported": ["2025-06-18"]}}
    assert parse(msg.raw).body == msg.body


def test_request_and_notification_builders() -> None:
    req = messages.request("p-1", "ping")
    assert req.is_request and req.id == "p-1"
    assert json.loads(req.raw) == {"jsonrpc": "2.0", "id": "p-1", "method": "ping"}
    assert "params" in messages.request(1, "m", {}).body
    note = messages.notification("notifications/tools/list_changed")
    assert note.kind is Kind.NOTIFICATION and "params" not in note.body
    assert messages.notification("n", {"a": 1}).params == {"a": 1}


def test_from_obj_and_classify_agree() -> None:
    obj = {"jsonrpc": "2.0", "id": 2, "result": None}
    msg = from_obj(obj)
    assert (msg.kind, msg.id, msg.method) == classify(obj) == (Kind.RESPONSE, 2, None)
    assert isinstance(msg, Message)


json_ids = st.one_of(st.integers(), st.text())


@given(msg_id=json_ids, method=st.text(min_size=1), params=st.dictionaries(st.text(), st.integers()))
def test_builders_round_trip_through_parse(msg_id: Any, method: str, params: dict[str, int]) -> None:
    built = messages.request(msg_id, method, params)
    again = parse(built.raw)
    assert (again.kind, again.id, again.method, again.body) == (Kind.REQUEST, msg_id, method, built.body)
    assert b"\n" not in built.raw


@given(value=st.one_of(st.booleans(), st.floats(allow_nan=False), st.none(), st.lists(st.integers())))
def test_only_strings_and_ints_are_request_ids(value: Any) -> None:
    with pytest.raises(InvalidMessage) as info:
        classify({"jsonrpc": "2.0", "id": value, "method": "m"})
    assert info.value.code == INVALID_REQUEST


# -- bugs --------------------------------------------------------------------------------------------


def test_deeply_nested_input_is_answered_not_raised() -> None:
    with pytest.raises(InvalidMessage) as info:
        parse(b"[" * 100_000)
    assert info.value.code == PARSE_ERROR


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_literals_are_parse_errors(literal: str) -> None:
    with pytest.raises(InvalidMessage) as info:
        parse(f'{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"x":{literal}}}}}')
    assert info.value.code == PARSE_ERROR


def test_with_id_survives_an_escaped_lone_surrogate() -> None:
    msg = parse(b'{"jsonrpc":"2.0","id":1,"method":"m","params":{"s":"\\ud800"}}')
    renamed = msg.with_id("p-1")
    assert parse(renamed.raw).body == {**msg.body, "id": "p-1"}
