"""--print-config and --list-profiles output: YAML that reads back, sources shown, secrets masked."""

from __future__ import annotations

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
    assert set(profile) == {n for n, s in settings().items() if s.scope == "profile"}
    assert set(data["logging"]) == {n for n, s in settings().items() if s.scope == "logging"}
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
