"""A server that comes up after the client's first request: the request waits (up to --queue-timeout) while
the proxy retries with its usual backoff, instead of being answered "cannot connect" at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from tests.integration.conftest import RunningServer
from tests.integration.test_stdio_framing import INIT_PARAMS, closed_port, rpc
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.mark.parametrize("transport", [("--transport", "sse"), ()], ids=["sse", "auto"])
async def test_initialize_waits_for_a_server_that_is_still_starting(
    transport: tuple[str, ...], raw_proxy: Any, start_sdk_server: Callable[..., RunningServer]
) -> None:
    kind = "sse" if transport else "streamable"
    with closed_port() as port:
        path = "/sse" if transport else "/mcp"
        url = f"http://127.0.0.1:{port}{path}"
        args = (*transport, "--connect-timeout", "2", "--queue-timeout", "20")
        async with raw_proxy(url, *args) as proxy:
            await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
            # A refused attempt logged: the server comes up after the proxy started trying.
            await eventually(lambda: "attempt" in proxy.stderr_text(), what="a refused attempt in the log")
            server = await anyio.to_thread.run_sync(start_sdk_server, kind, "--port", str(port))
            assert server.port == port
            answer = await proxy.read_message(timeout=20)
            assert answer["id"] == 1 and answer["result"]["serverInfo"]["name"] == "sdk-test-server", answer
            assert "attempt" in proxy.stderr_text()
