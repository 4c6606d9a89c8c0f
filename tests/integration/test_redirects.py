"""Redirects never carry our headers or bodies to another origin (issue 18).

Two fault servers on 127.0.0.1 are two origins (other ports): the first redirects (its `redirect` switch), the
second's request log shows everything that reached it — which must be nothing unless the policy allows it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.integration.conftest import FaultControl, RunningServer, running_server

pytestmark = pytest.mark.anyio

SECRET_HEADER = "X-Api-Key: key-7f3a9c0e51"
SECRET_VALUE = "key-7f3a9c0e51"
FORWARDED = {"TOOLENV_TOKEN": "fwd-4b1d8e2c77"}
INIT_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "redirect-test-client", "version": "1"},
}


def rpc(method: str, request_id: int, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


@pytest.fixture(scope="module")
def other_origin_process() -> Iterator[RunningServer]:
    """A second fault server: another port on 127.0.0.1, so another origin."""
    with running_server("tests.servers.fault_server", "") as server:
        yield server


@pytest.fixture
async def other_origin(other_origin_process: RunningServer) -> AsyncIterator[FaultControl]:
    control = FaultControl(other_origin_process)
    try:
        await control.reset()
        yield control
    finally:
        await control.reset()
        await control.aclose()


def _assert_refusal(answer: dict[str, Any], source: str, target: str) -> None:
    message = answer["error"]["message"]
    assert "redirect" in message and source in message and target in message, message


@pytest.mark.parametrize("status", [307, 308])
async def test_streamable_post_redirected_to_another_origin_is_refused(
    status: int, fault_server: FaultControl, other_origin: FaultControl, raw_proxy: Any
) -> None:
    await fault_server.configure(
        redirect={"to": other_origin.base_url, "status": status, "http_method": "POST", "count": -1}
    )
    args = ("--transport", "streamable-http", "--header", SECRET_HEADER, "--env-prefixes", "TOOLENV_")
    async with raw_proxy(fault_server.mcp_url, *args, env=FORWARDED) as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        answer = await proxy.read_message(timeout=15)
        assert answer["id"] == 1 and "error" in answer
        _assert_refusal(answer, fault_server.mcp_url, other_origin.mcp_url)
        stderr = proxy.stderr_text()
    assert await other_origin.requests() == []
    assert "redirect" in stderr and SECRET_VALUE not in stderr


async def test_tools_call_body_with_forwarded_env_is_not_redirected(
    fault_server: FaultControl, other_origin: FaultControl, raw_proxy: Any
) -> None:
    await fault_server.configure(
        redirect={"to": other_origin.base_url, "status": 307, "rpc_method": "tools/call", "count": -1}
    )
    args = ("--transport", "streamable-http", "--header", SECRET_HEADER, "--env-prefixes", "TOOLENV_")
    async with raw_proxy(fault_server.mcp_url, *args, env=FORWARDED) as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        assert "result" in await proxy.read_message(timeout=15)
        await proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await proxy.send(rpc("tools/call", 2, name="echo", arguments={"text": "hi"}))
        answer, _ = await proxy.read_until(lambda m: m.get("id") == 2, timeout=15)
        _assert_refusal(answer, fault_server.mcp_url, other_origin.mcp_url)
        assert FORWARDED["TOOLENV_TOKEN"] not in proxy.stderr_text()
    assert await other_origin.requests() == []


async def test_legacy_endpoint_redirecting_elsewhere_is_refused(
    fault_server: FaultControl, other_origin: FaultControl, raw_proxy: Any
) -> None:
    """The endpoint event names a same-origin URL; its POSTs are redirected to another origin."""
    await fault_server.configure(
        redirect={"to": other_origin.base_url, "status": 307, "http_method": "POST", "count": -1}
    )
    args = ("--transport", "sse", "--header", SECRET_HEADER)
    async with raw_proxy(fault_server.sse_url, *args) as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        answer = await proxy.read_message(timeout=15)
        assert answer["id"] == 1 and "error" in answer
        _assert_refusal(answer, fault_server.base_url + "/messages/", other_origin.base_url + "/messages/")
    assert await other_origin.requests() == []


async def test_same_origin_redirect_is_followed(fault_server: FaultControl, raw_proxy: Any) -> None:
    await fault_server.configure(
        redirect={"to": fault_server.base_url, "status": 307, "http_method": "POST", "count": 1}
    )
    async with raw_proxy(fault_server.mcp_url, "--transport", "streamable-http") as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        answer = await proxy.read_message(timeout=15)
        assert "result" in answer
    posts = [e for e in await fault_server.requests() if e["method"] == "POST"]
    assert [e["status"] for e in posts[:2]] == [307, 200]


async def test_same_site_setting_allows_another_port_on_the_same_host(
    fault_server: FaultControl, other_origin: FaultControl, raw_proxy: Any
) -> None:
    await fault_server.configure(
        redirect={"to": other_origin.base_url, "status": 307, "http_method": "POST", "count": -1}
    )
    args = ("--transport", "streamable-http", "--header", SECRET_HEADER, "--redirects", "same-site")
    args += ("--header", "Authorization: Bearer tok-5e6f7a8b")
    async with raw_proxy(fault_server.mcp_url, *args) as proxy:
        await proxy.send(rpc("initialize", 1, **INIT_PARAMS))
        answer = await proxy.read_message(timeout=15)
        assert "result" in answer
    received = await other_origin.rpc_requests("initialize")
    assert received and received[0]["headers"]["x-api-key"] == SECRET_VALUE
    # The user trusts the site: Authorization goes along too (httpx2 alone would drop it).
    assert received[0]["headers"]["authorization"] == "Bearer tok-5e6f7a8b"
