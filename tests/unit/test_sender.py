"""`relaydriver.sender.Sender`: a send whose request was answered before its task began sends nothing."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.messages import Message
from mcp_sse_proxy.relaycore import CloseStream, RelayCore, Settings, Write
from mcp_sse_proxy.relaydriver.sender import Sender

pytestmark = pytest.mark.anyio


class Upstream:
    loses_in_flight_on_session_loss = False
    cancels_by_notification = False

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.idle = anyio.Event()

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message.method == "ping":
            self.idle.set()  # the marker sent last: everything before it has run


class Host:
    def __init__(self, core: RelayCore) -> None:
        self.core = core
        self.upstream = Upstream()
        self.last_activity = 0.0
        self.sender: Sender | None = None
        self.written: list[Message] = []

    def tap_out(self, message: Message) -> None:
        pass

    async def carry_out(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Write):
                self.written.append(action.message)
            elif isinstance(action, CloseStream):
                assert self.sender is not None
                self.sender.close(action.request_id)

    def made_room(self) -> None:
        pass

    def arm(self, at: float) -> None:
        pass

    def timer_at(self) -> float:
        return math.inf

    def wake_connector(self) -> None:
        pass


async def test_a_request_cancelled_before_its_send_task_ran_is_not_sent() -> None:
    """The client's cancel is read in the same turn of the loop as its request (both in one read from
    stdin): the request's send task is started but has not run, so there is no stream to close yet. It
    must not go out then (the server would run a call nobody waits for; for a 2026-07-28 request nothing
    else tells the server)."""
    core = RelayCore(Settings())
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "method": "initialize"}), 0.0)
    core.connected(core.first_attempt(), True, loses_in_flight=False, cancels_by_notification=False)
    host = Host(core)
    async with anyio.create_task_group() as tg:
        sender = Sender(host, lambda: tg, max_concurrency=4)
        host.sender = sender
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_all"}}
        call["params"]["_meta"] = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
        await host.carry_out(core.client_message(jsonrpc.from_obj(call), 0.0))
        sender.pump()  # its task is started, not run
        cancel = jsonrpc.notification("notifications/cancelled", {"requestId": 1})
        await host.carry_out(core.client_message(cancel, 0.0))
        await host.carry_out(
            core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 2, "method": "ping"}), 0.0)
        )
        sender.pump()
        with anyio.fail_after(5):
            await host.upstream.idle.wait()
    assert [m.id for m in host.upstream.sent] == [2]
