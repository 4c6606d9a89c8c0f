"""Pure parts of `--check`: hints, attempt parsing, URL cleaning, masking, proxy and CA descriptions."""

from __future__ import annotations

from pathlib import Path

from mcp_sse_proxy import doctor
from mcp_sse_proxy.config.model import Profile
from mcp_sse_proxy.errors import SessionLost, UpstreamError, UpstreamHTTPError, UpstreamUnavailable
from mcp_sse_proxy.transports.detect import NoTransport

URL = "https://mcp.example.com/mcp"


def http_error(
    status: int, challenge: str | None = None, retry_after: float | None = None
) -> UpstreamHTTPError:
    return UpstreamHTTPError(f"HTTP {status}", status=status, challenge=challenge, retry_after=retry_after)


def test_auth_hints() -> None:
    bare = Profile(name="p", url=URL)
    hint = doctor._hint_for(http_error(401, 'Basic realm="x"'), bare)
    assert "--header 'Authorization: Basic …'" in hint and "header_file" in hint
    oauth = doctor._hint_for(http_error(401, 'Bearer resource_metadata="https://a/.well-known/x"'), bare)
    assert "OAuth" in oauth
    with_token = Profile(
        name="p",
        url=URL,
        headers={"authorization": "Bearer abcd"},
        sources={"headers.authorization": "file p.yaml:3"},
    )
    assert "(from file p.yaml:3)" in doctor._hint_for(http_error(401), with_token)
    assert "scopes" in doctor._hint_for(http_error(403), with_token)


def test_status_and_error_hints() -> None:
    profile = Profile(name="p", url=URL)
    assert "/mcp" in doctor._hint_for(http_error(404), profile)
    assert "--transport" in doctor._hint_for(http_error(405), profile)
    assert "HTTPS_PROXY" in doctor._hint_for(http_error(407), profile)
    assert "try again in 7 s" in doctor._hint_for(http_error(429, retry_after=7), profile)
    assert "logs" in doctor._hint_for(http_error(502), profile)
    assert "/sse" in doctor._hint_for(NoTransport("nothing", None), profile)
    assert "session" in doctor._hint_for(SessionLost("gone"), profile)
    tls = UpstreamUnavailable("cannot connect to x: [SSL: CERTIFICATE_VERIFY_FAILED] verify failed")
    assert "--ca-file" in doctor._hint_for(tls, profile)
    refused = UpstreamUnavailable("cannot connect: Connection refused")
    assert "host and port" in doctor._hint_for(refused, profile)
    assert "--read-timeout" in doctor._hint_for(UpstreamError("POST x timed out (ReadTimeout)"), profile)


def test_tried_entries_from_detection_lines() -> None:
    lines = ["streamable-http http://h:1/mcp: POST http://h:1/mcp answered HTTP 404 Not Found", "odd"]
    assert doctor._tried(lines) == [
        {
            "transport": "streamable-http",
            "url": "http://h:1/mcp",
            "result": "POST http://h:1/mcp answered HTTP 404 Not Found",
        },
        {"transport": "odd", "url": "", "result": "odd"},
    ]


def test_urls_in_messages_lose_credentials_and_query() -> None:
    text = "GET http://user:pw@h:8/sse?token=abc answered 500; see (https://x/y?q=1)"
    assert doctor._clean_urls(text) == "GET http://h:8/sse answered 500; see (https://x/y)"


def test_mask_secrets_walks_structures() -> None:
    value = {"a": ["Bearer abcd1234", {"k-abcd1234": 3}], "n": None, "short": "abc"}
    assert doctor.mask_secrets(value, {"abcd1234", "abc"}) == {
        "a": ["Bearer ***", {"k-***": 3}],
        "n": None,
        "short": "abc",
    }


def test_profile_secrets() -> None:
    profile = Profile(name="p", url="https://u:passw0rd@h/mcp", headers={"Authorization": "Bearer tok-1234"})
    assert doctor.profile_secrets(profile) == {"Bearer tok-1234", "tok-1234", "passw0rd"}


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
    assert doctor._env_proxy(profile) is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.local:3128")
    assert doctor._env_proxy(profile) == "http://proxy.local:3128"
    assert doctor._env_proxy(Profile(name="p", url=URL, use_env_proxy=False)) is None
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert doctor._env_proxy(profile) is None


def test_ca_source(monkeypatch) -> None:
    assert doctor._ca_source(Profile(name="p", url=URL, tls_verify=False)).startswith("none")
    assert doctor._ca_source(Profile(name="p", url=URL, ca_file=Path("/x/ca.pem"))) == "ca_file /x/ca.pem"
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/bundle.pem")
    assert doctor._ca_source(Profile(name="p", url=URL)) == "SSL_CERT_FILE /etc/bundle.pem"
    assert "SSL_CERT_FILE" not in doctor._ca_source(Profile(name="p", url=URL, use_env_proxy=False))


def test_certificate_hint() -> None:
    cert = {"san": ["a.example", "b.example"]}
    assert "a.example, b.example" in doctor._certificate_hint("Hostname mismatch, ...", "h", cert, "x")
    assert "renew" in doctor._certificate_hint("certificate has expired", "h", cert, "x")
    assert "--ca-file" in doctor._certificate_hint("self-signed certificate", "h", cert, "the system")


def test_render_failed_profile_shows_challenge_and_hint() -> None:
    report = doctor._crashed_report(Profile(name="p", url=URL), RuntimeError("boom at https://u:p@h/x?t=1"))
    report["error"]["www_authenticate"] = 'Bearer realm="r"'
    text = doctor.render_text(doctor.build_document([Profile(name="p", url=URL)], [report]))
    assert "profile p: FAILED at internal" in text
    assert "https://h/x" in text and "t=1" not in text
    assert 'WWW-Authenticate: Bearer realm="r"' in text
    assert "0 of 1 profile working: PROBLEMS FOUND" in text
