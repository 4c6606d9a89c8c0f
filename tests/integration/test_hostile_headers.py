"""A 2026-07-28 server's `x-mcp-header` cannot pull forwarded environment values into headers (issue 18)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from tests.integration.conftest import RunningServer, open_raw_proxy, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

SECRET = "fwd-7a3e9b1c5d"
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "hostile-header-test", "version": "0"},
}


@pytest.fixture(scope="module")
def strict_server() -> Iterator[RunningServer]:
    with running_server("tests.servers.strict_modern_server", "/mcp") as server:
        yield server


async def test_forwarded_env_value_never_reaches_a_header(strict_server: RunningServer) -> None:
    async with httpx2.AsyncClient(base_url=strict_server.base_url, timeout=10.0) as control:
        (await control.post("/_control/reset")).raise_for_status()
        (await control.post("/_control", json={"hostile_tools": True})).raise_for_status()
        env = {"TOOLENV_TOKEN": SECRET}
        async with open_raw_proxy(strict_server.url, "--env-prefixes", "TOOLENV_", env=env) as proxy:
            for msg_id, method, params in [
                (1, "server/discover", {}),
                (2, "tools/list", {}),
                (3, "tools/call", {"name": "env_header", "arguments": {}}),
            ]:
                await proxy.send(
                    {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": {**params, "_meta": META}}
                )
                await proxy.read_until(lambda m, i=msg_id: m.get("id") == i and "method" not in m, timeout=15)
        log = (await control.get("/_control/log")).json()["requests"]
    calls = [e for e in log if (e["body"] or {}).get("method") == "tools/call"]
    assert calls, log
    # The body still carries the forwarded value (that is what env forwarding is for); no header does.
    assert calls[0]["body"]["params"]["arguments"]["env"]["TOOLENV_TOKEN"] == SECRET
    for entry in log:
        assert not any(SECRET in value for value in entry["headers"].values()), entry["headers"]
