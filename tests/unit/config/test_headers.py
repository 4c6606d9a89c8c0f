"""Headers: --header forms, ST_PROXY_HEADERS / ST_PROXY_HEADER_<NAME>, ${VAR}, header files, secrets."""

from __future__ import annotations

import pytest

from mcp_sse_proxy.cli import parse_flags
from mcp_sse_proxy.config import ConfigError
from mcp_sse_proxy.config.sources import parse_header_line

from .helpers import URL, flag, load


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Authorization: Bearer abc", ("Authorization", "Bearer abc")),
        ("Authorization:Bearer abc", ("Authorization", "Bearer abc")),
        ("X-Key:abc", ("X-Key", "abc")),
        ("  X-Key  :   spaced value  ", ("X-Key", "spaced value")),
        ("X-Empty:", ("X-Empty", "")),
        ("X-Url: http://a:b@c", ("X-Url", "http://a:b@c")),
    ],
)
def test_parse_header_line(line: str, expected: tuple[str, str]) -> None:
    assert parse_header_line(line) == expected


@pytest.mark.parametrize("line", ["no colon", ": value", "Bad Name: x", "Bad\tName: x"])
def test_parse_header_line_rejects(line: str) -> None:
    with pytest.raises(ValueError):
        parse_header_line(line)


def test_header_flags_repeat_and_accept_windows_split_form() -> None:
    _, flags = parse_flags(["--sse-url", URL, "--header", "Authorization:${TOKEN}", "-H", "X-A: 1111"])
    config = load(flags, {"TOKEN": "Bearer s3cret-token"})
    assert config.profiles[0].headers == {"Authorization": "Bearer s3cret-token", "X-A": "1111"}
    assert config.profiles[0].sources["headers.Authorization"] == "flag --header"
    assert config.profiles[0].sources["headers.X-A"] == "flag -H"


def test_headers_variable_is_newline_separated() -> None:
    config = load([flag("url", URL)], {"ST_PROXY_HEADERS": "X-A: one1\r\nX-B:two2\n\n"})
    assert config.profiles[0].headers == {"X-A": "one1", "X-B": "two2"}


def test_single_header_variables() -> None:
    environ = {"ST_PROXY_HEADER_X_API_KEY": "k-1234", "ST_PROXY_HEADERS": "X-Api-Key: old1"}
    config = load([flag("url", URL)], environ)
    assert config.profiles[0].headers == {"X-Api-Key": "k-1234"}
    assert config.profiles[0].sources["headers.X-Api-Key"] == "env ST_PROXY_HEADER_X_API_KEY"


def test_headers_merge_by_name_case_insensitively_across_layers() -> None:
    files = {"/c/p.yaml": f"url: {URL}\nheaders:\n  authorization: from-file\n  X-Keep: kept\n"}
    config = load(
        [flag("profile", "p"), flag("headers", "Authorization: from-flag")],
        {"ST_PROXY_HEADERS": "X-Env: env1"},
        files,
    )
    assert config.profiles[0].headers == {"X-Keep": "kept", "X-Env": "env1", "Authorization": "from-flag"}
    assert config.profiles[0].sources["headers.X-Keep"] == "file /c/p.yaml:4"


def test_extended_profiles_merge_headers() -> None:
    files = {
        "/c/p.yaml": f"profiles:\n  base: {{headers: {{X-A: a111, X-B: b111}}}}\n"
        f"  p: {{extends: base, url: '{URL}', headers: {{X-B: b222}}}}\n"
    }
    assert load([flag("profile", "p")], {}, files).profiles[0].headers == {"X-A": "a111", "X-B": "b222"}


def test_variables_expand_and_double_dollar_escapes() -> None:
    config = load([flag("url", URL), flag("headers", "X-A: pre-${ONE}-$${TWO}")], {"ONE": "1111"})
    assert config.profiles[0].headers["X-A"] == "pre-1111-${TWO}"


def test_missing_variable_is_named_without_showing_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        load([flag("url", URL), flag("headers", "Authorization: Bearer ${NOPE} topsecret")])
    message = str(info.value)
    assert "headers.Authorization (from flag --header): uses ${NOPE}, which is not set" in message
    assert "topsecret" not in message


def test_header_file_headers_rank_with_the_layer_naming_the_file() -> None:
    header_text = "# comment\n\nAuthorization: Bearer from-file\nX-File: f111\nX-Flag: file-loses\n"
    config = load(
        [flag("url", URL), flag("header_file", "/secrets/h.txt"), flag("headers", "X-Flag: flag-wins")],
        {"ST_PROXY_HEADERS": "X-File: env-loses\nX-Env: e111"},
        headers_files={"/secrets/h.txt": header_text},
    )
    assert config.profiles[0].headers == {
        "Authorization": "Bearer from-file",
        "X-File": "f111",
        "X-Flag": "flag-wins",
        "X-Env": "e111",
    }
    assert config.profiles[0].sources["headers.X-File"] == "header-file /secrets/h.txt:4"


def test_header_file_in_yaml_is_relative_to_the_yaml_file() -> None:
    files = {"/etc/p/p.yaml": f"url: {URL}\nheader_file: p.headers\n"}
    header_files = {"/etc/p/p.headers": "X-T: ${T}\n"}
    config = load([flag("profile", "p")], {"T": "tok1"}, files, headers_files=header_files)
    assert config.profiles[0].headers == {"X-T": "tok1"}


def test_header_file_problems() -> None:
    with pytest.raises(ConfigError) as info:
        load([flag("url", URL), flag("header_file", "/missing")])
    assert "header_file (from flag --header-file): cannot read /missing" in str(info.value)
    with pytest.raises(ConfigError) as info:
        header_files = {"/h": "ok: 1\nsecret-without-colon\n"}
        load([flag("url", URL), flag("header_file", "/h")], headers_files=header_files)
    assert "/h:2: header line: expected 'Name: value'" in str(info.value)
    assert "secret-without-colon" not in str(info.value)


def test_header_values_and_credentials_are_secrets() -> None:
    config = load(
        [flag("url", URL), flag("headers", "Authorization: Bearer tok-123456"), flag("headers", "X-Key: k")]
    )
    assert {"Bearer tok-123456", "tok-123456", "k"} <= config.secrets


def test_forwarded_env_values_and_url_passwords_are_secrets() -> None:
    config = load(
        [flag("url", "http://user:pw-9876@127.0.0.1/sse"), flag("env_prefixes", "GH_")],
        {"GH_TOKEN": "ghp_abcdef", "OTHER": "not-secret"},
    )
    assert {"ghp_abcdef", "pw-9876"} <= config.secrets
    assert "not-secret" not in config.secrets
