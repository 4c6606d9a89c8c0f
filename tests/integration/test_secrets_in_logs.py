"""A real run's debug log holds no secret: header values, URL query tokens, session ids (issue 18)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import FaultControl

pytestmark = pytest.mark.anyio

HEADER_SECRET = "hdr-5c1d9e7a"
URL_TOKEN = "qtok-8e2f4b6c"
INIT_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "log-test-client", "version": "1"},
}


async def test_debug_log_of_a_streamable_session_masks_every_secret(
    fault_server: FaultControl, raw_proxy: Any, tmp_path: Path
) -> None:
    debug_log = tmp_path / "logs" / "debug.log"
    url = f"{fault_server.mcp_url}?token={URL_TOKEN}"
    args = (
        "--transport", "streamable-http", "--header", f"X-Api-Key: {HEADER_SECRET}",
        "--debug-enabled", "--debug-filename", str(debug_log), "--debug-http",
    )  # fmt: skip
    async with raw_proxy(url, *args) as proxy:
        await proxy.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS})
        assert "result" in await proxy.read_message(timeout=15)
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await proxy.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        await proxy.read_until(lambda m: m.get("id") == 2, timeout=15)
        await proxy.close_stdin()
        await proxy.wait(timeout=15)
        stderr = proxy.stderr_text()
    posts = [e for e in await fault_server.requests() if e["method"] == "POST"]
    session_id = next(e["headers"]["mcp-session-id"] for e in posts if "mcp-session-id" in e["headers"])
    text = debug_log.read_text()
    assert "HTTP Request: POST" in text  # the request lines are there, with their secrets masked
    for secret in (HEADER_SECRET, URL_TOKEN, session_id):
        assert secret not in text, secret
        assert secret not in stderr, secret
    assert "token=***" in text
