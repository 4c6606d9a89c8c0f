"""The original 0.1.4 script's flag and variable names keep working exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_sse_proxy.cli import parse_flags

from .helpers import URL, load


def loaded(argv: list[str], environ: dict[str, str] | None = None):
    _, flags = parse_flags(argv)
    return load(flags, environ or {})


@pytest.mark.parametrize("spelling", ["--sse-url", "--base-url", "--url"])
def test_url_flags(spelling: str) -> None:
    for argv in ([spelling, URL], [f"{spelling}={URL}"]):
        profile = loaded(argv).profiles[0]
        assert profile.url == URL
        assert profile.sources["url"] == f"flag {spelling}"


@pytest.mark.parametrize("env_name", ["ST_PROXY_SSE_URL", "ST_PROXY_URL"])
def test_url_variables(env_name: str) -> None:
    assert loaded([], {env_name: URL}).profiles[0].url == URL


def test_sse_url_variable_wins_over_the_generic_one() -> None:
    config = loaded([], {"ST_PROXY_URL": "http://h/other", "ST_PROXY_SSE_URL": URL})
    assert config.profiles[0].url == URL
    assert config.profiles[0].sources["url"] == "env ST_PROXY_SSE_URL"


def test_debug_enabled_flag_alone_means_true() -> None:
    assert loaded(["--sse-url", URL, "--debug-enabled"]).logging.debug_enabled is True
    assert loaded(["--debug-enabled", "--sse-url", URL]).logging.debug_enabled is True
    assert loaded(["--sse-url", URL, "--debug-enabled", "false"]).logging.debug_enabled is False
    negated = loaded(["--sse-url", URL, "--no-debug-enabled"], {"ST_PROXY_DEBUG_ENABLED": "1"})
    assert negated.logging.debug_enabled is False


@pytest.mark.parametrize("raw", ["true", "TRUE", "True", "1", "yes", "YES", "Yes", "on"])
def test_debug_enabled_variable_true_words(raw: str) -> None:
    assert loaded(["--sse-url", URL], {"ST_PROXY_DEBUG_ENABLED": raw}).logging.debug_enabled is True


@pytest.mark.parametrize("raw", ["false", "FALSE", "0", "no", "No", "off"])
def test_debug_enabled_variable_false_words(raw: str) -> None:
    assert loaded(["--sse-url", URL], {"ST_PROXY_DEBUG_ENABLED": raw}).logging.debug_enabled is False


def test_debug_filename_and_ping_interval() -> None:
    config = loaded(
        ["--sse-url", URL, "--ping-interval", "12"],
        {"ST_PROXY_DEBUG_FILENAME": "proxy.log", "ST_PROXY_PING_INTERVAL": "99"},
    )
    assert config.logging.debug_filename == Path("proxy.log")
    assert config.profiles[0].ping_interval == 12.0
    assert loaded(["--sse-url", URL], {"ST_PROXY_PING_INTERVAL": "0"}).profiles[0].ping_interval == 0.0


def test_env_prefixes_comma_list() -> None:
    config = loaded(["--sse-url", URL], {"ST_PROXY_ENV_PREFIXES": "GITHUB_, AWS_,,"})
    assert config.profiles[0].env_prefixes == ("GITHUB_", "AWS_")


def test_env_prefixes_flag_is_repeatable_and_comma_separated() -> None:
    config = loaded(["--sse-url", URL, "--env-prefixes", "A_,B_", "--env-prefixes", "C_"])
    assert config.profiles[0].env_prefixes == ("A_", "B_", "C_")


def test_empty_variable_counts_as_unset() -> None:
    config = loaded(["--sse-url", URL], {"ST_PROXY_PING_INTERVAL": "", "ST_PROXY_TRANSPORT": ""})
    assert config.profiles[0].ping_interval == 30.0
    assert config.profiles[0].transport == "auto"
