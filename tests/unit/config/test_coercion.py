"""Strings from env and argv become the schema's types before validation."""

from __future__ import annotations

import pytest

from mcp_sse_proxy.config import ConfigError
from mcp_sse_proxy.config.merge import coerce
from mcp_sse_proxy.config.schema import settings

from .helpers import URL, flag, load


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("ping_interval", "2.5", 2.5),
        ("ping_interval", " 3 ", 3.0),
        ("reconnect_attempts", "7", 7),
        ("tls_verify", "No", False),
        ("lazy", "ON", True),
        ("transport", "Streamable-HTTP", "streamable-http"),
        ("log_level", "DEBUG", "debug"),
        ("include_tools", "a*, b ,,c", ["a*", "b", "c"]),
        ("include_tools", "", []),
        ("ca_file", "", None),
        ("prefix", "", None),
    ],
)
def test_coerce(name: str, raw: str, expected: object) -> None:
    assert coerce(settings()[name], raw) == expected


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("ping_interval", "soon", "must be a number"),
        ("ping_interval", "nan", "must be a finite number"),
        ("ping_interval", "inf", "must be a finite number"),
        ("reconnect_attempts", "1.5", "must be a whole number"),
        ("tls_verify", "maybe", "must be true or false"),
    ],
)
def test_coerce_rejects(name: str, raw: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        coerce(settings()[name], raw)


def test_coerced_values_are_then_validated_against_the_schema() -> None:
    with pytest.raises(ConfigError) as info:
        load([flag("url", URL), flag("ping_interval", "-1")])
    assert "ping_interval (from flag --ping-interval): must be at least 0, got -1.0" in str(info.value)


def test_unknown_enum_value_names_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        load([flag("url", URL)], {"ST_PROXY_TRANSPORT": "websocket"})
    assert (
        "transport (from env ST_PROXY_TRANSPORT): must be one of auto, sse, streamable-http, got 'websocket'"
    ) in str(info.value)


def test_yaml_values_are_typed_by_yaml_not_coerced() -> None:
    with pytest.raises(ConfigError) as info:
        load([flag("profile", "p")], {}, {"/c/p.yaml": f"url: {URL}\nping_interval: '30'\n"})
    assert "ping_interval (from file /c/p.yaml:2): must be a number, got '30'" in str(info.value)


def test_integers_from_yaml_are_accepted_for_numbers_and_stored_as_float() -> None:
    config = load([flag("profile", "p")], {}, {"/c/p.yaml": f"url: {URL}\nping_interval: 30\n"})
    assert config.profiles[0].ping_interval == 30.0
    assert isinstance(config.profiles[0].ping_interval, float)


def test_lists_become_tuples_and_headers_a_plain_dict() -> None:
    config = load(
        [flag("profile", "p")],
        {},
        {"/c/p.yaml": f"url: {URL}\ninclude_tools: [a, b]\nheaders: {{X-A: one1}}\n"},
    )
    assert config.profiles[0].include_tools == ("a", "b")
    assert config.profiles[0].headers == {"X-A": "one1"}
