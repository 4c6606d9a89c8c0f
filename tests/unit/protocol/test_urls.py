"""URL rules: resolving a legacy SSE endpoint, transport candidates, and URLs fit for logs."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.errors import EndpointRefused, ProxyError, UpstreamError
from mcp_sse_proxy.protocol.urls import candidate_urls, display, origin, resolve_endpoint

SSE = "http://example.com:8000/api/sse"


# -- resolve_endpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("/messages/?session_id=abc", "http://example.com:8000/messages/?session_id=abc"),
        ("/messages", "http://example.com:8000/messages"),
        ("messages?sessionId=1", "http://example.com:8000/api/messages?sessionId=1"),
        ("messages/", "http://example.com:8000/api/messages/"),
        ("../up?x=1&y=2", "http://example.com:8000/up?x=1&y=2"),
        ("?sessionId=9", "http://example.com:8000/api/sse?sessionId=9"),
        ("http://example.com:8000/m?s=1", "http://example.com:8000/m?s=1"),
        ("//example.com:8000/m", "http://example.com:8000/m"),
        ("HTTP://EXAMPLE.com:8000/m", "http://EXAMPLE.com:8000/m"),
    ],
)
def test_same_origin_endpoints_resolve(endpoint: str, expected: str) -> None:
    assert resolve_endpoint(SSE, endpoint) == expected


def test_relative_to_an_sse_url_with_a_query() -> None:
    assert resolve_endpoint("https://h/sse?token=t", "messages?s=1") == "https://h/messages?s=1"
    assert resolve_endpoint("https://h/a/sse?token=t", "/m") == "https://h/m"


@pytest.mark.parametrize(
    ("sse", "endpoint"),
    [
        ("http://h/sse", "http://h:80/m"),
        ("http://h:80/sse", "http://h/m"),
        ("https://h/sse", "https://h:443/m"),
        ("https://h:443/sse", "https://h/m"),
        ("https://H/sse", "https://h/m"),
    ],
)
def test_default_ports_equal_explicit_ones(sse: str, endpoint: str) -> None:
    assert resolve_endpoint(sse, endpoint) == endpoint


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://example.com:8000/m",
        "http://other.com:8000/m",
        "http://example.com:8001/m",
        "http://example.com/m",
        "//evil.example/m",
        "http://example.com@evil.example:8000/m",
        "ftp://example.com:8000/m",
        "javascript:alert(1)",
    ],
)
def test_cross_origin_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(EndpointRefused) as info:
        resolve_endpoint(SSE, endpoint)
    assert "origin" in str(info.value)


def test_scheme_downgrade_is_refused() -> None:
    with pytest.raises(EndpointRefused):
        resolve_endpoint("https://h/sse", "http://h:443/m")


def test_empty_endpoint_is_refused() -> None:
    with pytest.raises(EndpointRefused):
        resolve_endpoint(SSE, "")


def test_endpoint_refused_is_an_upstream_error() -> None:
    assert issubclass(EndpointRefused, UpstreamError) and issubclass(EndpointRefused, ProxyError)


def test_origin() -> None:
    assert origin("HTTPS://Example.COM/x") == ("https", "example.com", 443)
    assert origin("http://[::1]:9/x") == ("http", "::1", 9)
    assert origin("ws://h/x") == ("ws", "h", None)


@given(path=st.from_regex(r"\A[a-z0-9/._-]{0,20}\Z"), query=st.from_regex(r"\A[a-z0-9=&]{0,12}\Z"))
def test_relative_endpoints_always_stay_on_origin(path: str, query: str) -> None:
    endpoint = path + ("?" + query if query else "")
    if not endpoint or endpoint.startswith("//"):
        return
    resolved = resolve_endpoint(SSE, endpoint)
    assert origin(resolved) == origin(SSE)
    assert urlsplit(resolved).query == query


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://example.com:abc/m",
        "http://example.com:99999/m",
        "http://example.com:8000.evil.example/m",
        "http://[::1/m",
    ],
)
def test_malformed_endpoint_is_refused(endpoint: str) -> None:
    with pytest.raises(EndpointRefused):
        resolve_endpoint(SSE, endpoint)


# -- candidate_urls --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://h:8000", "http://h:8000/"])
def test_bare_url_tries_mcp_then_sse_then_itself(url: str) -> None:
    assert candidate_urls(url) == [
        ("streamable-http", "http://h:8000/mcp"),
        ("sse", "http://h:8000/sse"),
        ("streamable-http", url),
        ("sse", url),
    ]


@pytest.mark.parametrize("url", ["https://h/sse", "https://h/api/sse/", "https://h/sse?key=1"])
def test_sse_url_tries_legacy_first(url: str) -> None:
    assert candidate_urls(url) == [("sse", url), ("streamable-http", url)]


@pytest.mark.parametrize(
    "url", ["https://h/mcp", "https://h/api/mcp/", "https://h/v1/foo-sse", "https://h/sse/x"]
)
def test_other_paths_try_streamable_http_first(url: str) -> None:
    assert candidate_urls(url) == [("streamable-http", url), ("sse", url)]


@pytest.mark.parametrize("url", ["http://h:8000?key=abc", "http://h:8000/?key=abc"])
def test_bare_url_with_a_query_keeps_the_query_after_the_path(url: str) -> None:
    (first, mcp), (second, sse) = candidate_urls(url)[:2]
    assert (first, second) == ("streamable-http", "sse")
    for candidate, path in ((mcp, "/mcp"), (sse, "/sse")):
        parts = urlsplit(candidate)
        assert (parts.path, parts.query) == (path, "key=abc")


# -- display -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@h.example/mcp?token=abc#frag", "https://h.example/mcp"),
        ("http://token@h:8080/sse", "http://h:8080/sse"),
        ("http://h/sse?api_key=k", "http://h/sse"),
        ("http://h", "http://h"),
        ("http://[::1]:9000/x?t=1", "http://[::1]:9000/x"),
        ("https://H.Example/x", "https://h.example/x"),
    ],
)
def test_display_strips_userinfo_query_and_fragment(url: str, shown: str) -> None:
    assert display(url) == shown


@given(
    user=st.from_regex(r"\A[a-z]{1,8}\Z"),
    password=st.from_regex(r"\A[a-z0-9]{1,8}\Z"),
    token=st.from_regex(r"\A[A-Za-z0-9]{4,16}\Z"),
)
def test_display_never_shows_secrets(user: str, password: str, token: str) -> None:
    shown = display(f"https://{user}:{password}@host.invalid:8443/p?token={token}")
    assert shown == "https://host.invalid:8443/p"
    assert "@" not in shown and "?" not in shown
