"""--print-config and --list-profiles output: YAML that reads back, sources shown, secrets masked."""

from __future__ import annotations

from dataclasses import replace

import yaml

from mcp_sse_proxy.config import Document, build_catalog
from mcp_sse_proxy.config.report import render_config, render_profile_list
from mcp_sse_proxy.config.schema import settings

from .helpers import URL, flag, load


def test_print_config_reads_back_with_secrets_masked() -> None:
    flags = [
        flag("url", "http://me:pass-word@127.0.0.1/sse"),
        flag("headers", "Authorization: Bearer tok-42xx"),
    ]
    config = load(flags, {"ST_PROXY_PING_INTERVAL": "3"})
    text = render_config(config, version="9.9")
    assert "tok-42xx" not in text and "pass-word" not in text
    data = yaml.safe_load(text)
    profile = data["profiles"]["default"]
    assert profile["headers"] == {"Authorization": "***"}
    assert profile["url"] == "http://***@127.0.0.1/sse"  # the whole userinfo is a secret (issue 18)
    assert profile["ping_interval"] == 3.0
    assert set(profile) == {n for n, s in settings().items() if s.scope in ("profile", "logging")}
    assert "ping_interval: 3.0  # env ST_PROXY_PING_INTERVAL" in text
    assert 'Authorization: "***"  # flag --header' in text


def test_list_profiles_shows_locations_extends_and_shadowing() -> None:
    catalog = build_catalog(
        [
            Document("/a/x.yaml", f"profiles:\n  base: {{}}\n  x: {{extends: base, url: '{URL}'}}\n"),
            Document("/b/x.yaml", f"url: {URL}\n"),
        ]
    )
    assert render_profile_list(catalog) == (
        "base\t/a/x.yaml:2\nx\t/a/x.yaml:3\textends base\nx\t/b/x.yaml:1\t(shadowed by /a/x.yaml:3)\n"
    )


def test_print_config_output_loads_as_a_profile_file_with_the_same_settings(tmp_path) -> None:
    header_file = tmp_path / "headers.txt"
    header_file.write_text("X-From-File: abcdef\n")
    flags = [
        flag("url", URL),
        flag("headers", "X-Api-Key: key-123456"),
        flag("header_file", str(header_file)),
        flag("ca_file", "relative/ca.pem"),
        flag("debug_enabled", "true"),
        flag("trace_file", "trace.jsonl"),
    ]
    headers = {str(header_file): header_file.read_text()}
    first = load(flags, {"ST_PROXY_PING_INTERVAL": "3"}, headers_files=headers)
    text = render_config(first, version="9.9")
    second = load([], {}, {str(tmp_path / "elsewhere" / "saved.yaml"): text}, headers_files=headers)
    (a,), (b,) = first.profiles, second.profiles
    relative = {"headers": None, "ca_file": None}  # relative paths are printed absolute
    assert {**_settings_of(a), **relative} == {**_settings_of(b), **relative}
    assert b.ca_file == a.ca_file.absolute()
    assert b.headers == {"X-Api-Key": "***", "X-From-File": "abcdef"}  # the file's header read again
    assert second.logging.trace_file == first.logging.trace_file.absolute()
    assert replace(first.logging, trace_file=None) == replace(second.logging, trace_file=None)
    assert "# debug log: " in text and "# trace: " in text and str(tmp_path) in text


def test_print_config_says_where_debug_log_and_trace_would_go() -> None:
    text = render_config(load([flag("url", URL)], {}), version="9.9")
    assert "# debug log: off (--debug-enabled writes it to " in text
    assert "mcp-sse-proxy-debug.log" in text
    assert "# trace: off" in text


def _settings_of(profile) -> dict:
    return {name: getattr(profile, name) for name in settings() if hasattr(profile, name)}
