"""Every error path: each message names the profile, the field, the source and the expectation."""

from __future__ import annotations

import pytest

from mcp_sse_proxy.config import ConfigError, build_catalog
from mcp_sse_proxy.config.sources import Document

from .helpers import URL, flag, load

SECRET = "hunter2-very-secret"


def problems(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load(*args, **kwargs)
    return str(info.value)


def test_invalid_yaml_names_file_line_and_column() -> None:
    text = f"url: {URL}\nheaders:\n  X-A: [unclosed\n"
    message = problems([flag("profile", "p")], {}, {"/c/p.yaml": text})
    assert message.startswith("/c/p.yaml:4:1: invalid YAML:")


def test_tabs_in_yaml() -> None:
    message = problems([], {}, {"/c/p.yaml": "url: x\n\tping_interval: 1\n"})
    assert message.startswith("/c/p.yaml:2:")


def test_every_broken_file_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        build_catalog([Document("/a.yaml", "a: [\n"), Document("/b.yaml", "- 1\n")])
    assert len(info.value.problems) == 2
    assert "/b.yaml:1: expected a mapping of settings or 'profiles:'" in info.value.problems[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "profiles:\n  p: {}\nurl: x\n",
            "/c/f.yaml:3: a file with 'profiles:' holds nothing else (found 'url')",
        ),
        ("profiles: [a]\n", "/c/f.yaml:1: 'profiles:' must map profile names to settings"),
        ("profiles:\n  p: [1]\n", "/c/f.yaml:2: profile 'p' must be a mapping of settings"),
        ("url: a\nurl: b\n", "/c/f.yaml:2: 'url' is set twice in the same mapping (first at line 1)"),
        ("1: a\n", "/c/f.yaml:1: keys must be plain strings"),
    ],
)
def test_structure_errors(text: str, expected: str) -> None:
    assert problems([], {}, {"/c/f.yaml": text}) == expected


def test_empty_file_defines_nothing() -> None:
    assert build_catalog([Document("/c/empty.yaml", "# nothing yet\n")]).profiles == {}


def test_unknown_profile_lists_the_available_ones() -> None:
    files = {"/c/a.yaml": f"url: {URL}\n", "/c/b.yaml": "profiles:\n  zeta: {}\n  beta: {}\n"}
    expected = "profile 'gamma': not found; available: a, beta, zeta"  # no `searched` given
    assert problems([flag("profile", "gamma")], {}, files) == expected


def test_unknown_profile_without_any_files() -> None:
    assert "no profile files were found" in problems([flag("profile", "x")])


def test_unknown_key_names_file_line_and_suggests() -> None:
    message = problems([flag("profile", "p")], {}, {"/c/p.yaml": f"url: {URL}\nping_intervall: 3\n"})
    assert message == (
        "profile 'p': ping_intervall (from file /c/p.yaml:2): unknown setting; did you mean 'ping_interval'?"
    )


def test_missing_url_says_how_to_set_it() -> None:
    assert problems() == (
        "profile 'default': url: required but not set (set --sse-url, ST_PROXY_SSE_URL or "
        "'url:' in a profile)"
    )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp:/x", "the URL must start with http:// or https://, got 'ftp:/x'"),
        ("ftp://h/x", "the URL must start with http:// or https://, got 'ftp://h/x'"),
        (
            "localhost:8000/sse",
            "the URL must start with http:// or https:// (e.g. http://localhost:8000/sse)",
        ),
        ("http://h/a b", "the URL must not contain spaces or line breaks"),
    ],
)
def test_bad_url_says_what_a_url_must_look_like(url: str, words: str) -> None:
    message = problems([], {"ST_PROXY_SSE_URL": url})
    assert f"url (from env ST_PROXY_SSE_URL): {words}" in message
    assert "^[" not in message  # no regular expression


def test_a_bad_url_is_repeated_without_its_password() -> None:
    message = problems([], {"ST_PROXY_SSE_URL": f"ftp://me:{SECRET}@h/"})
    assert SECRET not in message and "ftp://***@h/" in message  # the whole userinfo is a secret


def test_no_schema_message_shows_a_regular_expression() -> None:
    text = f"url: {URL}\nprefix: a.b\nheaders:\n  'X Y': a\n  Z: \"a\\nb\"\n  W: 3\nenv_prefixes: ['']\n"
    message = problems([flag("profile", "p")], {}, {"/c/p.yaml": text})
    assert "^[" not in message and "matching" not in message
    assert "prefix (from file /c/p.yaml:2): an alias may hold only letters, digits, '_' and '-'" in message
    assert "headers (from file /c/p.yaml:4): 'X Y' is not a valid header name" in message
    assert "headers.Z (from file /c/p.yaml:5): the value contains a control character (U+000A)" in message
    assert "headers.W (from file /c/p.yaml:6): the value of header W must be a string" in message
    assert "env_prefixes.0 (from file /c/p.yaml:7): must not be empty" in message


def test_wrong_type_names_the_env_var() -> None:
    message = problems([flag("url", URL)], {"ST_PROXY_MAX_CONCURRENCY": "0"})
    assert message == (
        "profile 'default': max_concurrency (from env ST_PROXY_MAX_CONCURRENCY): must be at least 1, got 0"
    )


def test_unknown_variable_is_an_error_with_a_suggestion() -> None:
    message = problems([flag("url", URL)], {"ST_PROXY_PING_INTERAVL": "5"})
    assert message == (
        "profile 'default': ST_PROXY_PING_INTERAVL: unknown ST_PROXY_* variable; "
        "did you mean ST_PROXY_PING_INTERVAL?"
    )


def test_all_problems_of_all_profiles_are_reported_together() -> None:
    files = {"/c/x.yaml": "profiles:\n  a: {ping_interval: x}\n  b: {url: 'http://h/', lazy: 3}\n"}
    with pytest.raises(ConfigError) as info:
        load([flag("profile", "a,b")], {}, files)
    text = str(info.value)
    assert "profile 'a': url: required" in text
    assert "profile 'a': ping_interval (from file /c/x.yaml:2): must be a number, got 'x'" in text
    assert "profile 'b': lazy (from file /c/x.yaml:3): must be true or false, got 3" in text


@pytest.mark.parametrize(
    "bad_header",
    [
        {"flags": [flag("headers", f"Bad Name: {SECRET}")]},
        {"environ": {"ST_PROXY_HEADERS": f"{SECRET}"}},
        {"files": {"/c/p.yaml": f"url: {URL}\nheaders: {{X-A: [{SECRET}]}}\n"}},
        {"files": {"/c/p.yaml": f'url: {URL}\nheaders: {{X-A: "a\\n{SECRET}"}}\n'}},
        {"files": {"/c/p.yaml": f"url: {URL}\nheaders: {SECRET}\n"}},
    ],
)
def test_errors_never_echo_a_header_value(bad_header: dict) -> None:
    flags = [flag("url", URL), *bad_header.get("flags", [])]
    if "files" in bad_header:
        flags = [flag("profile", "p")]
    with pytest.raises(ConfigError) as info:
        load(flags, bad_header.get("environ", {}), bad_header.get("files"))
    assert SECRET not in str(info.value)
    assert "headers" in str(info.value)


def test_env_and_flag_problems_name_the_selected_profiles() -> None:
    files = {"/c/x.yaml": "profiles:\n  a: {url: 'http://h/'}\n  b: {url: 'http://h/'}\n"}
    message = problems([flag("profile", "a,b"), flag("ping_interval", "soon")], {}, files)
    assert message == (
        "profile 'a', 'b': ping_interval (from flag --ping-interval): must be a number, got 'soon'"
    )
