"""`--check` sees what the relay sees (issue 18): redirects refused, secrets masked, cleartext warned about.

Driven through the command (`--check --json`), so it holds whichever module implements the check.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from tests.doctor.conftest import REPO_ROOT, make_self_signed
from tests.integration.conftest import RunningServer, running_server

pytestmark = pytest.mark.integration

SECRET = "k-31f9a2c7e0"


@pytest.fixture(scope="module")
def two_origins() -> Iterator[tuple[RunningServer, RunningServer]]:
    with (
        running_server("tests.servers.fault_server", "") as first,
        running_server("tests.servers.fault_server", "") as second,
    ):
        yield first, second


def _control(server: RunningServer, path: str, payload: dict[str, Any] | None = None) -> Any:
    with httpx2.Client(base_url=server.base_url, timeout=10.0) as client:
        response = client.post(path, json=payload or {}) if payload is not None else client.get(path)
        response.raise_for_status()
        return response.json()


def _check(*args: str) -> tuple[int, dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_PROXY_")}
    result = subprocess.run(
        [sys.executable, "-m", "mcp_sse_proxy", *args, "--no-use-env-proxy", "--check", "--json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return result.returncode, json.loads(result.stdout), result.stderr


def test_check_refuses_a_cross_origin_redirect_and_sends_nothing_there(
    two_origins: tuple[RunningServer, RunningServer],
) -> None:
    first, second = two_origins
    _control(first, "/_control/reset", {})
    _control(second, "/_control/reset", {})
    _control(first, "/_control", {"redirect": {"to": second.base_url, "status": 307, "count": -1}})
    status, document, stderr = _check(
        "--sse-url", first.base_url + "/mcp", "--header", f"X-Api-Key: {SECRET}"
    )
    assert status == 1
    report = document["profiles"][0]
    assert not report["ok"]
    text = json.dumps(document)
    assert "redirected" in text and f"{first.base_url}/mcp" in text and f"{second.base_url}/mcp" in text
    assert SECRET not in text and SECRET not in stderr
    assert _control(second, "/_control/log")["requests"] == []


def test_check_refuses_a_redirect_from_https_to_plain_http(
    two_origins: tuple[RunningServer, RunningServer], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, plain = two_origins
    certificate = make_self_signed(tmp_path_factory.mktemp("tls"))
    tls_args = ("--certfile", str(certificate.certfile), "--keyfile", str(certificate.keyfile))
    with running_server("tests.servers.fault_server", "", *tls_args) as secure:
        base = f"https://127.0.0.1:{secure.port}"
        with httpx2.Client(
            base_url=base, timeout=10.0, verify=ssl.create_default_context(cafile=str(certificate.certfile))
        ) as client:
            client.post(
                "/_control", json={"redirect": {"to": plain.base_url, "count": -1}}
            ).raise_for_status()
        _control(plain, "/_control/reset", {})
        args = (
            "--sse-url",
            base + "/mcp",
            "--ca-file",
            str(certificate.certfile),
            "--header",
            f"X-K: {SECRET}",
        )
        status, document, stderr = _check(*args)
    assert status == 1
    text = json.dumps(document)
    assert "from https to plain http" in text and plain.base_url in text
    assert SECRET not in text and SECRET not in stderr
    assert _control(plain, "/_control/log")["requests"] == []
