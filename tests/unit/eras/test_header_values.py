"""The Base64 sentinel codec and the rendering of tool arguments as `Mcp-Param-*` values."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.headers import (
    decode_header_value,
    encode_header_value,
    is_plain_header_value,
    param_header_value,
)

inbound = pytest.importorskip("mcp.shared.inbound")


def b64(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        # The spec's table (basic/transports/streamable-http.mdx § Value Encoding).
        ("us-west1", "us-west1"),
        ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        (" padded ", "=?base64?IHBhZGRlZCA=?="),
        ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
        ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
    ],
)
def test_spec_examples(value: str, encoded: str) -> None:
    assert encode_header_value(value) == encoded
    assert decode_header_value(encoded) == value


@pytest.mark.parametrize(
    "value",
    [
        "get_weather",
        "file:///projects/myapp/config.json",
        "a b c",
        "SELECT * FROM t",
        "",
        "~!@#$%^&*()",
        "?=",
    ],
)
def test_plain_values_pass_verbatim(value: str) -> None:
    assert encode_header_value(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "café",  # non-ASCII
        "日本語のツール",
        "emoji 🎉",
        " leading",
        "trailing ",
        "\tleading tab",
        "inner\ttab",  # tab is a control character: the spec's rule and the SDK both encode it
        "carriage\rreturn",
        "nul\x00byte",
        "del\x7fchar",
        "bell\x07",
        "=?base64?=",  # the markers overlap: starts with the prefix and ends with the suffix
        "=?base64?abc?=",
        "=?base64??=",
        "=?BASE64?abc?=",  # look-alike in another case: encoded too, harmless and safer
    ],
)
def test_unsafe_values_are_encoded(value: str) -> None:
    encoded = encode_header_value(value)
    assert encoded == b64(value)
    assert is_plain_header_value(encoded)
    assert decode_header_value(encoded) == value


def test_value_that_only_starts_like_a_sentinel_stays_plain() -> None:
    assert encode_header_value("=?base64?") == "=?base64?"
    assert encode_header_value("=?base64?abc") == "=?base64?abc"
    assert decode_header_value("=?base64?abc") == "=?base64?abc"


def test_decode_leaves_non_sentinel_values_alone() -> None:
    assert decode_header_value("plain value") == "plain value"
    assert decode_header_value("=?BASE64?YQ==?=") == "=?BASE64?YQ==?="  # markers are case-sensitive


@pytest.mark.parametrize(
    "value",
    [
        "=?base64?not base64!?=",
        "=?base64?YQ?=",  # missing padding
        "=?base64?YR==?=",  # non-canonical trailing bits
        "=?base64?" + base64.b64encode(b"\xff\xfe").decode() + "?=",  # not UTF-8
    ],
)
def test_decode_rejects_malformed_sentinels(value: str) -> None:
    with pytest.raises(ValueError):
        decode_header_value(value)


@given(st.text())
def test_round_trip(value: str) -> None:
    encoded = encode_header_value(value)
    assert is_plain_header_value(encoded)
    assert decode_header_value(encoded) == value


@given(st.text())
def test_the_sdk_decodes_what_we_encode(value: str) -> None:
    assert inbound.decode_header_value(encode_header_value(value)) == value


@given(st.text())
def test_we_decode_what_the_sdk_encodes(value: str) -> None:
    assert decode_header_value(inbound.encode_header_value(value)) == value


@pytest.mark.parametrize(
    ("value", "header"),
    [
        ("us-west1", "us-west1"),
        ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        ("", ""),
        (42, "42"),
        (-7, "-7"),
        (0, "0"),
        (2**53 - 1, "9007199254740991"),
        (42.0, "42"),  # an integer written with a fraction in the JSON
        (-3.0, "-3"),
        (1.5, "1.5"),
        (True, "true"),
        (False, "false"),
        (None, None),
        ([1, 2], None),
        ({"a": 1}, None),
        (float("nan"), None),
        (float("inf"), None),
    ],
)
def test_param_header_value(value: object, header: str | None) -> None:
    assert param_header_value(value) == header
