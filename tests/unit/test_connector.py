"""`relaydriver.connector.Connector`: a failed ping ends only its own session; a bug costs one attempt."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from mcp_sse_proxy.errors import NoReply
from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.relaycore import RelayCore, Settings
from mcp_sse_proxy.relaydriver.connector import Connector

pytestmark = pytest.mark.anyio


class FakeUpstream:
    loses_in_flight_on_session_loss = True

    def __init__(self) -> None:
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1


class Host:
    def __init__(self, core: RelayCore) -> None:
        self.core = core
        self.upstream = FakeUpstream()
        self.last_activity = anyio.current_time()
        self.pings = 0
        self.again = anyio.Event()
        self.lost: list[Any] = []

    async def own_request(self, method: str, params: Any, timeout: float) -> Any:
        self.pings += 1
        if self.pings > 1:  # the next keepalive round: the first failure has been handled
            self.again.set()
            await anyio.sleep_forever()
        # While the ping waits, the stream drops and the connector opens a new session (as fast as it can).
        core = self.core
        core.session_lost(core.generation, "stream closed")
        core.reconnect_attempt()
        core.connected(None, False, loses_in_flight=True, cancels_by_notification=False)
        raise NoReply("no answer to the proxy's ping")

    def carry_out_nowait(self, actions: list[Any]) -> None:
        self.lost.extend(actions)


async def test_a_ping_that_failed_on_a_replaced_session_leaves_the_new_one_alone() -> None:
    core = RelayCore(Settings())
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "method": "initialize"}), 0.0)
    first = core.first_attempt()
    core.connected(first, True, loses_in_flight=True, cancels_by_notification=False)
    core.upstream_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "result": {}}), 0.0)
    assert core.ready and core.memory.init_result is not None
    host = Host(core)
    profile = SimpleNamespace(ping_interval=0.01, read_timeout=1.0)
    connector = Connector(host, profile)  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        tg.start_soon(connector.keepalive)
        with anyio.fail_after(5):
            await host.again.wait()
        tg.cancel_scope.cancel()
    assert core.ready
    # Closing here would stop the new session's stream with nobody told: every later answer lost.
    assert host.upstream.closed == 0


class Reopening:
    """An upstream whose first reopening hits a bug (not an `UpstreamError`), the second works."""

    loses_in_flight_on_session_loss = False
    cancels_by_notification = False
    url = "http://upstream/mcp"

    def __init__(self) -> None:
        self.opens = 0
        self.reopened = anyio.Event()

    async def open(self) -> None:
        self.opens += 1
        if self.opens == 1:
            raise KeyError("a bug in the transport")
        self.reopened.set()


class ConnectorHost(Host):
    def __init__(self, core: RelayCore) -> None:
        super().__init__(core)
        self.upstream = Reopening()  # type: ignore[assignment]

    async def carry_out(self, actions: list[Any]) -> None:
        pass


async def test_a_bug_while_reconnecting_costs_one_attempt_not_the_relay() -> None:
    core = RelayCore(Settings())
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "method": "ping"}), 0.0)
    core.connected(core.first_attempt(), True, loses_in_flight=False, cancels_by_notification=False)
    core.session_lost(core.generation, "stream closed")
    host = ConnectorHost(core)
    profile = SimpleNamespace(
        connect_timeout=5.0,
        read_timeout=5.0,
        reconnect_initial_backoff=0.01,
        reconnect_max_backoff=0.01,
        url="http://upstream/mcp",
    )
    connector = Connector(host, profile)  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        tg.start_soon(connector.run, None, tg)
        with anyio.fail_after(5):
            await host.upstream.reopened.wait()  # type: ignore[attr-defined]
        tg.cancel_scope.cancel()
    assert core.ready and host.upstream.opens == 2  # type: ignore[attr-defined]


class BuggyPing(Host):
    async def own_request(self, method: str, params: Any, timeout: float) -> Any:
        self.pings += 1
        if self.pings > 1:
            self.again.set()
            await anyio.sleep_forever()
        raise KeyError("a bug in the transport")


async def test_a_bug_in_a_keepalive_ping_costs_that_ping_not_the_relay() -> None:
    core = RelayCore(Settings())
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "method": "initialize"}), 0.0)
    core.connected(core.first_attempt(), True, loses_in_flight=True, cancels_by_notification=False)
    core.upstream_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "result": {}}), 0.0)
    host = BuggyPing(core)
    connector = Connector(host, SimpleNamespace(ping_interval=0.01, read_timeout=1.0))  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        tg.start_soon(connector.keepalive)
        with anyio.fail_after(5):
            await host.again.wait()  # the next round came: the keepalive lives on
        tg.cancel_scope.cancel()
    assert core.ready


async def test_a_message_that_wakes_an_idle_connector_is_not_held_by_the_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before the first connection, earlier attempts failed and their messages were answered (nothing to
    connect for). A new message wakes the connector: it tries at once, not after the backoff of the old
    failures (which would outlast the message's queue timeout: the flake of test_dead_port_is_not_a_verdict)."""
    from mcp_sse_proxy.relaydriver import connector as connector_module

    core = RelayCore(Settings(queue_timeout=30.0))
    core.failures = 6  # earlier attempts failed; their messages were answered meanwhile
    tried = anyio.Event()

    async def connect(*args: Any, **kwargs: Any) -> Any:
        tried.set()
        await anyio.sleep_forever()

    monkeypatch.setattr(connector_module.detect, "connect", connect)
    host = ConnectorHost(core)
    host.upstream = None  # type: ignore[assignment]
    host.tap_out = lambda message: None  # type: ignore[attr-defined]
    host.deliver = host.upstream_lost = lambda *args: None  # type: ignore[attr-defined]
    profile = SimpleNamespace(
        connect_timeout=60.0,
        read_timeout=60.0,
        reconnect_initial_backoff=60.0,
        reconnect_max_backoff=60.0,
        url="http://upstream/mcp",
    )
    connector = Connector(host, profile)  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        tg.start_soon(connector.run, None, tg)
        await anyio.wait_all_tasks_blocked()
        assert not tried.is_set()  # idle: nothing to connect for
        core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 1, "method": "ping"}), 0.0)
        connector.wake()
        with anyio.fail_after(10):  # the backoff is 60 s: only an attempt at once gets here
            await tried.wait()
        tg.cancel_scope.cancel()
