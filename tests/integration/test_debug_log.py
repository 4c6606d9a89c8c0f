"""`--debug-enabled` and `--trace`: one line (and one JSON record) per message, both sides, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from .conftest import RunningServer, open_proxy_session

pytestmark = pytest.mark.anyio

SECRET = "hdr-secret-5a4b3c2d1e"
ENV_SECRET = "env-secret-0f1e2d3c"


async def _short_session(server: RunningServer, tmp_path: Path) -> tuple[str, list[dict]]:
    debug_log, trace = tmp_path / "debug.log", tmp_path / "trace.jsonl"
    args = (
        "--debug-enabled",
        "--debug-filename",
        str(debug_log),
        "--trace",
        str(trace),
        "--header",
        f"X-Api-Key: {SECRET}",
        "--env-prefixes",
        "TRACE_TEST_",
    )
    async with open_proxy_session(server.url, *args, env={"TRACE_TEST_TOKEN": ENV_SECRET}) as session:
        await session.list_tools()
        await session.call_tool("echo", {"text": f"say {SECRET}"})
        await session.call_tool("env_echo", {})
        with pytest.raises(MCPError):
            await session.send_request(
                types.Request[Any, Any](method="no/such_method", params=None), types.EmptyResult
            )
    return debug_log.read_text(), [json.loads(line) for line in trace.read_text().splitlines()]


async def test_debug_log_and_trace_show_each_client_message_once_with_secrets_masked(
    sdk_streamable_server: RunningServer, tmp_path: Path
) -> None:
    log, records = await _short_session(sdk_streamable_server, tmp_path)
    message_lines = [line for line in log.splitlines() if " mcp_sse_proxy.messages: " in line]
    assert any("client→proxy default #" in line and " initialize " in line for line in message_lines)
    assert any(
        "proxy→client default #" in line and " result " in line and " ms" in line for line in message_lines
    )
    assert any(" tools/list " in line for line in message_lines)
    assert any(" error " in line for line in message_lines)
    # The message lines dominate: the HTTP library's own lines stay out without --debug-http.
    assert not [line for line in log.splitlines() if " httpcore2." in line or " httpx2" in line]
    assert SECRET not in log and ENV_SECRET not in log
    text = json.dumps(records)
    assert SECRET not in text and ENV_SECRET not in text
    directions = {record["direction"] for record in records}
    assert {"client_to_proxy", "proxy_to_client"} <= directions
    assert all({"ts", "direction", "profile", "id", "method", "size"} <= set(r) for r in records)
