"""Pure parts of `--check`: hints, attempt entries, URL cleaning, masking, proxy and CA descriptions."""

from __future__ import annotations

from pathlib import Path

from mcp_sse_proxy.check import build_document, mask_secrets, profile_secrets, render_text
from mcp_sse_proxy.check.conversation import _attempt_entry
from mcp_sse_proxy.check.hints import certificate_hint, hint_for
from mcp_sse_proxy.check.network import env_proxy
from mcp_sse_proxy.check.report import clean_urls, crashed_report
from mcp_sse_proxy.check.tls import ca_source
from mcp_sse_proxy.config.model import Profile
from mcp_sse_proxy.errors import SessionLost, UpstreamError, UpstreamHTTPError, UpstreamUnavailable
from mcp_sse_proxy.transports.detect import Attempt, NoTransport

URL = "https://mcp.example.com/mcp"


def http_error(
    status: int, challenge: str | None = None, retry_after: float | None = None
) -> UpstreamHTTPError:
    return UpstreamHTTPError(f"HTTP {status}", status=status, challenge=challenge, retry_after=retry_after)


def test_auth_hints() -> None:
    bare = Profile(name="p", url=URL)
    hint = hint_for(http_error(401, 'Basic realm="x"'), bare)
    assert "--header 'Authorization: Basic …'" in hint and "header_file" in hint
    oauth = hint_for(http_error(401, 'Bearer resource_metadata="https://a/.well-known/x"'), bare)
    assert "OAuth" in oauth
    with_token = Profile(
        name="p",
        url=URL,
        headers={"authorization": "Bearer abcd"},
        sources={"headers.authorization": "file p.yaml:3"},
    )
    assert "(from file p.yaml:3)" in hint_for(http_error(401), with_token)
    assert "scopes" in hint_for(http_error(403), with_token)


def test_status_and_error_hints() -> None:
    profile = Profile(name="p", url=URL)
    assert "/mcp" in hint_for(http_error(404), profile)
    assert "--transport" in hint_for(http_error(405), profile)
    assert "HTTPS_PROXY" in hint_for(http_error(407), profile)
    assert "try again in 7 s" in hint_for(http_error(429, retry_after=7), profile)
    assert "logs" in hint_for(http_error(502), profile)
    assert "/sse" in hint_for(NoTransport("nothing", None), profile)
    assert "session" in hint_for(SessionLost("gone"), profile)
    tls = UpstreamUnavailable("cannot connect to x: [SSL: CERTIFICATE_VERIFY_FAILED] verify failed")
    assert "--ca-file" in hint_for(tls, profile)
    refused = UpstreamUnavailable("cannot connect: Connection refused")
    assert "host and port" in hint_for(refused, profile)
    assert "--read-timeout" in hint_for(UpstreamError("POST x timed out (ReadTimeout)"), profile)


def test_tried_entries_from_detection_attempts() -> None:
    passed_over = Attempt(
        "streamable-http", "http://u:pw@h:1/mcp?k=v", "POST http://h:1/mcp?k=v answered 404"
    )
    assert _attempt_entry(passed_over) == {
        "transport": "streamable-http",
        "url": "http://h:1/mcp",
        "result": "POST http://h:1/mcp answered 404",
    }
    assert _attempt_entry(Attempt("sse", "http://h:1/sse")) == {
        "transport": "sse",
        "url": "http://h:1/sse",
        "result": "answered",
    }


def test_urls_in_messages_lose_credentials_and_query() -> None:
    text = "GET http://user:pw@h:8/sse?token=abc answered 500; see (https://x/y?q=1)"
    assert clean_urls(text) == "GET http://h:8/sse answered 500; see (https://x/y)"


def test_mask_secrets_walks_structures() -> None:
    value = {"a": ["Bearer abcd1234", {"k-abcd1234": 3}], "n": None, "short": "abc"}
    assert mask_secrets(value, {"abcd1234", "abc"}) == {
        "a": ["Bearer ***", {"k-***": 3}],
        "n": None,
        "short": "abc",
    }


def test_profile_secrets() -> None:
    profile = Profile(name="p", url="https://u:passw0rd@h/mcp", headers={"Authorization": "Bearer tok-1234"})
    assert profile_secrets(profile) == {"Bearer tok-1234", "tok-1234", "passw0rd"}


def test_env_proxy(monkeypatch) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    profile = Profile(name="p", url=URL)
    assert env_proxy(profile) is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.local:3128")
    assert env_proxy(profile) == "http://proxy.local:3128"
    assert env_proxy(Profile(name="p", url=URL, use_env_proxy=False)) is None
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert env_proxy(profile) is None


def test_ca_source(monkeypatch) -> None:
    assert ca_source(Profile(name="p", url=URL, tls_verify=False)).startswith("none")
    assert ca_source(Profile(name="p", url=URL, ca_file=Path("/x/ca.pem"))) == "ca_file /x/ca.pem"
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/bundle.pem")
    assert ca_source(Profile(name="p", url=URL)) == "SSL_CERT_FILE /etc/bundle.pem"
    # The relay's TLS context honours SSL_CERT_FILE whatever use_env_proxy says (a proxy setting only).
    assert ca_source(Profile(name="p", url=URL, use_env_proxy=False)) == "SSL_CERT_FILE /etc/bundle.pem"


def test_certificate_hint() -> None:
    cert = {"san": ["a.example", "b.example"]}
    assert "a.example, b.example" in certificate_hint("Hostname mismatch, ...", "h", cert, "x")
    assert "renew" in certificate_hint("certificate has expired", "h", cert, "x")
    assert "--ca-file" in certificate_hint("self-signed certificate", "h", cert, "the system")


def test_render_failed_profile_shows_challenge_and_hint() -> None:
    report = crashed_report(Profile(name="p", url=URL), RuntimeError("boom at https://u:p@h/x?t=1"))
    report["error"]["www_authenticate"] = 'Bearer realm="r"'
    text = render_text(build_document([Profile(name="p", url=URL)], [report]))
    assert "profile p: FAILED at internal" in text
    assert "https://h/x" in text and "t=1" not in text
    assert 'WWW-Authenticate: Bearer realm="r"' in text
    assert "0 of 1 profile working: PROBLEMS FOUND" in text
