"""`--check` against live peers on 127.0.0.1: each transport, a dead port, 401, a bare URL, TLS, JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mcp_sse_proxy.check import run_check
from mcp_sse_proxy.config.model import AppConfig, Profile
from tests.doctor.conftest import REPO_ROOT, free_port
from tests.doctor.peers import CHALLENGE, INSTRUCTIONS, SERVER_NAME, TOOLS

pytestmark = pytest.mark.integration

SCHEMA = json.loads((REPO_ROOT / "schemas" / "check-report.schema.json").read_text(encoding="utf-8"))
TOKEN = "s3cret-token-value"


def profile(name: str, url: str, **settings: Any) -> Profile:
    settings.setdefault("use_env_proxy", False)
    settings.setdefault("connect_timeout", 5.0)
    settings.setdefault("read_timeout", 10.0)
    return Profile(name=name, url=url, **settings)


def check(*profiles: Profile, secrets: frozenset[str] = frozenset()) -> tuple[int, dict[str, Any], str]:
    """Run the check twice (JSON and text); the exit status, the JSON document and the text."""
    config = AppConfig(profiles=profiles, secrets=secrets)
    out = io.StringIO()
    status = run_check(config, True, out)
    document = json.loads(out.getvalue())
    jsonschema.validate(document, SCHEMA)
    text = io.StringIO()
    assert run_check(config, False, text) == status
    return status, document, text.getvalue()


def steps(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["step"]: entry for entry in report["steps"]}


def assert_working(report: dict[str, Any], transport: str) -> None:
    assert report["ok"], report["error"]
    assert report["error"] is None
    assert report["transport"]["name"] == transport
    server = report["server"]
    assert (server["name"], server["version"]) == (SERVER_NAME, "1.2.3")
    assert server["protocol_version"]
    assert server["instructions"] == INSTRUCTIONS.splitlines()[0]
    assert {"tools", "prompts", "resources"} <= set(server["capabilities"])
    assert report["counts"] == {"tools": len(TOOLS), "prompts": 1, "resources": 1}
    assert sorted(report["tools"]) == sorted(TOOLS)
    latency = report["latency_ms"]
    assert latency["method"] == "ping" and len(latency["samples"]) == 3
    assert latency["median"] == sorted(latency["samples"])[1]
    assert [entry["status"] for entry in report["steps"]].count("failed") == 0


def test_streamable_http(streamable_peer) -> None:
    status, document, text = check(profile("st", streamable_peer.base + "/mcp"))
    assert status == 0 and document["ok"]
    report = document["profiles"][0]
    assert_working(report, "streamable-http")
    assert steps(report)["close"]["detail"] == "session ended with DELETE"
    assert steps(report)["tls"]["status"] == "skipped"
    assert report["transport"]["tried"] == [
        {"transport": "streamable-http", "url": streamable_peer.base + "/mcp", "result": "answered"}
    ]
    assert document["aggregate"] is None
    assert "profile st: OK" in text
    assert f"{SERVER_NAME} 1.2.3" in text
    assert INSTRUCTIONS.splitlines()[1] not in text
    assert "ping median" in text
    assert "1 of 1 profile working: all OK" in text


def test_stateless_streamable_http(stateless_peer) -> None:
    status, document, _ = check(profile("stateless", stateless_peer.base + "/mcp"))
    assert status == 0
    report = document["profiles"][0]
    assert_working(report, "streamable-http")
    assert steps(report)["close"]["detail"] == "stateless server: no session to end"


def test_legacy_sse(sse_peer) -> None:
    status, document, text = check(profile("legacy", sse_peer.base + "/sse"))
    assert status == 0
    report = document["profiles"][0]
    assert_working(report, "sse")
    assert report["transport"]["url"] == sse_peer.base + "/sse"
    assert steps(report)["close"]["detail"] == "event stream closed"
    assert any("--transport sse" in note for note in report["notes"])
    assert "legacy HTTP+SSE" in text


def test_bare_base_url_tries_mcp_then_sse(sse_peer, streamable_peer) -> None:
    status, document, text = check(
        profile("bare-sse", sse_peer.base), profile("bare-st", streamable_peer.base)
    )
    assert status == 0
    legacy, modern = document["profiles"]
    assert_working(legacy, "sse")
    tried = legacy["transport"]["tried"]
    assert [(t["transport"], t["url"]) for t in tried] == [
        ("streamable-http", sse_peer.base + "/mcp"),
        ("sse", sse_peer.base + "/sse"),
    ]
    assert "404" in tried[0]["result"]
    assert tried[1]["result"] == "answered"
    assert_working(modern, "streamable-http")
    assert modern["transport"]["url"] == streamable_peer.base + "/mcp"
    assert any(streamable_peer.base + "/mcp" in note for note in modern["notes"])
    assert f"tried streamable-http {sse_peer.base}/mcp" in text
    aggregate = document["aggregate"]
    assert aggregate["tools"] == 2 * len(TOOLS)
    assert "bare-sse__add" in aggregate["exposed_names"]
    assert aggregate["duplicates"] == {tool: ["bare-sse", "bare-st"] for tool in TOOLS}


def test_dead_port() -> None:
    port = free_port()
    status, document, text = check(profile("dead", f"http://127.0.0.1:{port}/mcp"))
    assert status == 1 and not document["ok"]
    report = document["profiles"][0]
    assert report["error"]["step"] == "tcp"
    assert "Connection refused" in report["error"]["message"]
    assert f"nothing listens on 127.0.0.1:{port}" in report["error"]["hint"]
    assert steps(report)["dns"]["status"] == "ok"
    assert "FAILED at tcp" in text
    assert "try          nothing listens" in text


def test_unresolvable_host() -> None:
    status, document, _ = check(profile("nowhere", "http://no-such-host.invalid/mcp"))
    assert status == 1
    error = document["profiles"][0]["error"]
    assert error["step"] == "dns"
    assert "host name 'no-such-host.invalid'" in error["hint"]


def test_unauthorized_shows_challenge_and_what_to_configure(unauthorized_peer) -> None:
    status, document, text = check(profile("locked", unauthorized_peer.base + "/mcp"))
    assert status == 1
    error = document["profiles"][0]["error"]
    assert (error["step"], error["http_status"], error["www_authenticate"]) == ("transport", 401, CHALLENGE)
    assert "--header 'Authorization: Bearer …'" in error["hint"]
    assert "ST_PROXY_HEADERS" in error["hint"]
    assert f"WWW-Authenticate: {CHALLENGE}" in text


def test_refused_token_is_named_by_source_and_never_printed(unauthorized_peer) -> None:
    configured = profile(
        "locked",
        unauthorized_peer.base + "/mcp",
        headers={"Authorization": f"Bearer {TOKEN}"},
        sources={"headers.Authorization": "env ST_PROXY_HEADER_AUTHORIZATION", "url": "flag --url"},
    )
    status, document, text = check(configured, secrets=frozenset({TOKEN, f"Bearer {TOKEN}"}))
    assert status == 1
    report = document["profiles"][0]
    assert report["url_source"] == "flag --url"
    assert "env ST_PROXY_HEADER_AUTHORIZATION" in report["error"]["hint"]
    assert "expired" in report["error"]["hint"]
    assert TOKEN not in json.dumps(document) and TOKEN not in text


def test_forced_streamable_on_a_legacy_server_suggests_sse(sse_peer) -> None:
    status, document, _ = check(profile("forced", sse_peer.base + "/sse", transport="streamable-http"))
    assert status == 1
    error = document["profiles"][0]["error"]
    assert error["step"] == "transport" and error["http_status"] == 405
    assert "legacy SSE" in error["hint"] and "--transport sse" in error["hint"]


def test_forced_sse_on_a_streamable_server_suggests_streamable(streamable_peer) -> None:
    status, document, _ = check(profile("forced", streamable_peer.base + "/mcp", transport="sse"))
    assert status == 1
    error = document["profiles"][0]["error"]
    assert "--transport streamable-http" in error["hint"]
    assert document["profiles"][0]["transport"]["tried"][0]["transport"] == "sse"


def test_wrong_path(streamable_peer) -> None:
    status, document, _ = check(profile("typo", streamable_peer.base + "/nope"))
    assert status == 1
    error = document["profiles"][0]["error"]
    assert error["step"] == "transport"
    assert "/mcp" in error["hint"] and "/sse" in error["hint"]


def test_self_signed_certificate_is_refused_by_default(tls_peer) -> None:
    peer, _certificate = tls_peer
    status, document, text = check(profile("tls", peer.base + "/mcp"))
    assert status == 1
    report = document["profiles"][0]
    assert report["error"]["step"] == "tls"
    assert "--ca-file" in report["error"]["hint"]
    assert report["tls"]["verified"] is False
    assert report["tls"]["subject"] == "CN=doctor-test"
    assert "127.0.0.1" in report["tls"]["san"]
    assert "FAILED at tls" in text


def test_self_signed_certificate_is_accepted_with_its_ca_file(tls_peer) -> None:
    peer, certificate = tls_peer
    configured = profile(
        "tls", peer.base + "/mcp", ca_file=certificate.certfile, sources={"ca_file": "flag --ca-file"}
    )
    status, document, text = check(configured)
    assert status == 0, document["profiles"][0]["error"]
    report = document["profiles"][0]
    assert_working(report, "streamable-http")
    tls = report["tls"]
    assert tls["verified"] is True
    assert tls["subject"] == tls["issuer"] == "CN=doctor-test"
    assert 28 <= tls["days_left"] <= 30
    assert tls["version"].startswith("TLS")
    assert tls["ca_source"] == f"ca_file {certificate.certfile} (from flag --ca-file)"
    assert "subject CN=doctor-test" in text


def test_tls_verification_off_warns(tls_peer) -> None:
    peer, _certificate = tls_peer
    status, document, _ = check(profile("insecure", peer.base + "/mcp", tls_verify=False))
    assert status == 0
    tls_step = steps(document["profiles"][0])["tls"]
    assert tls_step["status"] == "warning" and "--ca-file" in tls_step["hint"]
    assert document["profiles"][0]["tls"]["subject"] == "CN=doctor-test"


def test_env_proxy_is_reported_and_checked(monkeypatch, streamable_peer) -> None:
    port = free_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://user:pw-secret@127.0.0.1:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    status, document, text = check(profile("proxied", streamable_peer.base + "/mcp", use_env_proxy=True))
    assert status == 1
    report = document["profiles"][0]
    assert report["proxy"] == f"http://127.0.0.1:{port}"
    assert report["dns"]["via_proxy"] is True
    assert report["error"]["step"] == "tcp"
    assert "--no-use-env-proxy" in report["error"]["hint"]
    assert "pw-secret" not in text


def test_several_profiles_in_one_document(streamable_peer, unauthorized_peer) -> None:
    port = free_port()
    status, document, text = check(
        profile("good", streamable_peer.base + "/mcp"),
        profile("dead", f"http://127.0.0.1:{port}/mcp"),
        profile("locked", unauthorized_peer.base + "/mcp"),
    )
    assert status == 1
    assert [report["profile"] for report in document["profiles"]] == ["good", "dead", "locked"]
    assert [report["ok"] for report in document["profiles"]] == [True, False, False]
    assert "1 of 3 profiles working: PROBLEMS FOUND" in text


def test_progress_lines_only_where_asked(streamable_peer, capsys) -> None:
    config = AppConfig(profiles=(profile("st", streamable_peer.base + "/mcp"),))
    progress = io.StringIO()
    assert run_check(config, False, io.StringIO(), progress=progress) == 0
    lines = progress.getvalue().splitlines()
    assert "mcp-sse-proxy --check: st: dns ok" in lines
    assert "mcp-sse-proxy --check: st: close ok" in lines
    assert run_check(config, True, io.StringIO()) == 0  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""


def test_default_stream_is_stdout(capsys) -> None:
    config = AppConfig(profiles=(profile("dead", f"http://127.0.0.1:{free_port()}/mcp"),))
    assert run_check(config, True) == 1
    jsonschema.validate(json.loads(capsys.readouterr().out), SCHEMA)


def test_schema_is_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert Path(REPO_ROOT / "schemas" / "check-report.schema.json").is_file()


def test_ssl_cert_file_is_trusted_as_the_relay_trusts_it(monkeypatch, tls_peer) -> None:
    """The check shakes hands with the relay's TLS context: SSL_CERT_FILE counts whatever use_env_proxy says."""
    import anyio

    from mcp_sse_proxy.httpclient import build_client

    peer, certificate = tls_peer
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.certfile))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    configured = profile("env-ca", peer.base + "/mcp", use_env_proxy=False)

    async def relay_reaches_the_server() -> int:
        async with build_client(configured) as client:
            response = await client.get(peer.base + "/")
            return response.status_code

    assert isinstance(anyio.run(relay_reaches_the_server), int)  # no TLS error: the relay trusts it
    status, document, _ = check(configured)
    report = document["profiles"][0]
    assert status == 0, report["error"]
    assert steps(report)["tls"]["status"] == "ok"
    assert report["tls"]["ca_source"] == f"SSL_CERT_FILE {certificate.certfile}"


def test_check_leaves_the_detection_logger_alone(sse_peer) -> None:
    """Detection tells the check its attempts through a callback: no logger level or filter changes."""
    import logging

    import anyio

    from mcp_sse_proxy.check import check_profile

    logger = logging.getLogger("mcp_sse_proxy.detect")
    before = (logger.level, list(logger.filters))
    seen: list[tuple[int, list[logging.Filter]]] = []

    def on_step(_name: str, _entry: dict[str, Any]) -> None:
        seen.append((logger.level, list(logger.filters)))

    report = anyio.run(lambda: check_profile(profile("bare", sse_peer.base), on_step=on_step))
    assert report["ok"], report["error"]
    assert [entry["result"] == "answered" for entry in report["transport"]["tried"]] == [False, True]
    assert seen and all(state == before for state in seen)
