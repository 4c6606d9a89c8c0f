"""Issue 18 at the configuration layer: control characters in headers, tokens in URLs, malformed URLs.

Every case failed before the fix: the value passed validation (a schema `$` matches before a final newline),
a token in the URL's query was printed in clear, or a bad port crashed later with a traceback.
"""

from __future__ import annotations

import json

import pytest

from mcp_sse_proxy.cli import parse_flags
from mcp_sse_proxy.clientconfig import client_config
from mcp_sse_proxy.config import ConfigError
from mcp_sse_proxy.config.report import render_config
from mcp_sse_proxy.redaction import MASK, Redactor

from .helpers import URL, flag, load

VALUE = "k3y-v4lue-9"


def _problems(**kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load(**kwargs)  # type: ignore[arg-type]
    return "\n".join(caught.value.problems)


# ---- item 2: control characters in header names and values ---------------------------------------------------


@pytest.mark.parametrize("tail", ["\n", "\r", "\x00", "\x1b[31m", "\x7f", "a\nInjected: yes"])
def test_header_value_with_control_character_from_env_is_refused(tail: str) -> None:
    text = _problems(flags=[flag("url", URL)], environ={"ST_PROXY_HEADER_X_API_KEY": VALUE + tail})
    assert "headers.X-Api-Key (from env ST_PROXY_HEADER_X_API_KEY)" in text
    assert "control character" in text
    assert VALUE not in text and repr(VALUE + tail)[1:-1] not in text


def test_header_value_from_yaml_with_trailing_newline_is_refused() -> None:
    files = {"p.yaml": f'url: {URL}\nheaders:\n  X-Api-Key: "{VALUE}\\n"\n'}
    text = _problems(flags=[flag("profile", "p")], files=files)
    assert "headers.X-Api-Key (from file p.yaml:3)" in text and VALUE not in text


def test_header_value_from_an_expanded_variable_is_checked_after_expansion() -> None:
    text = _problems(
        flags=[flag("url", URL), flag("headers", "Authorization: Bearer ${TOKEN}")],
        environ={"TOKEN": VALUE + "\n"},
    )
    assert "headers.Authorization (from flag --header)" in text and VALUE not in text


def test_header_name_with_a_trailing_newline_is_refused() -> None:
    files = {"p.yaml": f'url: {URL}\nheaders:\n  "X-Api-Key\\n": {VALUE}\n'}
    text = _problems(flags=[flag("profile", "p")], files=files)
    assert "'X-Api-Key\\n' is not a valid header name" in text and VALUE not in text


def test_url_ending_in_a_newline_is_refused() -> None:
    text = _problems(flags=[flag("profile", "p")], files={"p.yaml": f'url: "{URL}\\n"\n'})
    assert "url (from file p.yaml:1): contains a control character (U+000A)" in text


# ---- item 2: escaped forms of secrets are masked ------------------------------------------------------------


@pytest.mark.parametrize("secret", ['p"ss\\w0rd', "tab\there", "naïve-sécret"])
def test_escaped_forms_of_a_secret_are_masked(secret: str) -> None:
    redactor = Redactor([secret])
    for text in (
        repr(secret),
        json.dumps(secret),
        json.dumps(secret, ensure_ascii=False),
        repr({"v": secret}),
    ):
        masked = redactor.redact(f"error: {text}")
        assert masked.count(MASK) == 1, (text, masked)


def test_registered_secrets_are_masked_by_every_redactor() -> None:
    from mcp_sse_proxy.redaction import redact, register_secret

    redactor = Redactor()
    register_secret("oauth-tok-5e1f2a")
    assert redactor.redact("token oauth-tok-5e1f2a") == f"token {MASK}"
    assert redact("'oauth-tok-5e1f2a'") == f"'{MASK}'"


# ---- item 3: tokens in URLs ---------------------------------------------------------------------------------

TOKEN_URL = "https://user1:pw-0a1b2c@mcp.example/mcp?api_key=tok-9z8y7x&tenant=acme"


def test_print_config_masks_userinfo_and_query_values() -> None:
    config = load([flag("url", TOKEN_URL)])
    text = render_config(config, version="test")
    assert "tok-9z8y7x" not in text and "pw-0a1b2c" not in text and "user1" not in text
    assert f'"https://{MASK}@mcp.example/mcp?api_key={MASK}&tenant={MASK}"' in text


def test_url_parts_are_secrets_of_the_config() -> None:
    config = load([flag("url", TOKEN_URL)])
    assert {"user1", "pw-0a1b2c", "tok-9z8y7x", "acme"} <= config.secrets


def test_log_lines_mask_query_values_of_any_url() -> None:
    line = 'HTTP Request: POST http://127.0.0.1:9/messages/?session_id=abc&token=t "HTTP/1.1 202 Accepted"'
    masked = Redactor().redact(line)
    assert (
        masked
        == f'HTTP Request: POST http://127.0.0.1:9/messages/?session_id={MASK}&token={MASK} "HTTP/1.1 202 Accepted"'
    )


def test_config_error_masks_a_url_with_its_password() -> None:
    text = _problems(flags=[flag("url", "https://me:pw-0a1b2c@h.example/m cp?token=tok-9z8y7x")])
    assert "pw-0a1b2c" not in text and "tok-9z8y7x" not in text
    assert "url (from flag --sse-url)" in text


def test_client_snippet_moves_a_url_with_a_token_into_env() -> None:
    argv = ["--sse-url", TOKEN_URL]
    _, flags = parse_flags(argv)
    config = load(flags)
    document = json.loads(client_config(config, "generic", False, argv, environ={}))
    entry = next(iter(document["mcpServers"].values()))
    assert not any("example" in arg for arg in entry["args"])
    assert entry["env"]["ST_PROXY_URL"] == f"https://{MASK}@mcp.example/mcp?api_key={MASK}&tenant={MASK}"


def test_client_snippet_keeps_a_plain_url_in_args() -> None:
    argv = ["--sse-url", URL]
    _, flags = parse_flags(argv)
    document = json.loads(client_config(load(flags), "generic", False, argv, environ={}))
    assert URL in next(iter(document["mcpServers"].values()))["args"]


# ---- item 7: URLs that pass the schema but cannot be used ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:99999/mcp", "invalid port"),
        ("http://127.0.0.1:8x/mcp", "invalid port"),
        ("http://[::1/mcp", "broken IPv6 host"),
        ("http://[zz::1]:8000/mcp", "valid IPv6 address"),
        ("http://:8000/mcp", "has no host"),
    ],
)
def test_unusable_urls_are_config_errors_naming_field_and_source(url: str, expected: str) -> None:
    text = _problems(environ={"ST_PROXY_SSE_URL": url + "?token=tok-9z8y7x"})
    assert "url (from env ST_PROXY_SSE_URL)" in text and expected in text
    assert "tok-9z8y7x" not in text


# ---- item 7: YAML alias expansion is bounded ----------------------------------------------------------------


def _alias_bomb(levels: int = 9) -> str:
    items = ['  - &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    items += [f"  - &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"url: {URL}\ninclude_tools:\n" + "\n".join(items) + "\n"


def test_an_alias_bomb_is_refused_without_building_it() -> None:
    import tracemalloc

    text = _alias_bomb()
    assert len(text) < 600
    tracemalloc.start()
    try:
        problems = _problems(flags=[flag("profile", "bomb")], files={"bomb.yaml": text})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "bomb.yaml:" in problems and "aliases expand to more than" in problems
    assert peak < 20 * 1024 * 1024


def test_a_self_referring_alias_is_refused() -> None:
    problems = _problems(
        flags=[flag("profile", "p")], files={"p.yaml": f"url: {URL}\ninclude_tools: &a [*a]\n"}
    )
    assert "refers to a value that contains it" in problems


def test_ordinary_aliases_still_work() -> None:
    text = f"profiles:\n  a:\n    url: {URL}\n    include_tools: &tools [x, y]\n  b:\n    url: {URL}\n    include_tools: *tools\n"
    config = load(flags=[flag("profile", "a,b")], files={"two.yaml": text})
    assert [p.include_tools for p in config.profiles] == [("x", "y"), ("x", "y")]


def test_learnt_secrets_are_bounded_but_lasting_ones_stay() -> None:
    from mcp_sse_proxy import redaction

    redaction.register_secret("lasting-cfg-7e1", lasting=True)
    for number in range(redaction.MAX_LEARNT_SECRETS + 10):
        redaction.register_secret(f"session-{number:06d}")
    known = redaction.registered_secrets()
    assert "lasting-cfg-7e1" in known and "session-000000" not in known
    assert f"session-{redaction.MAX_LEARNT_SECRETS + 9:06d}" in known
