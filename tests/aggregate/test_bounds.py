"""Issue 17 in the aggregator: bounded member streams, bounded and expiring server requests, and one
error boundary per client request that always answers."""

from __future__ import annotations

import socket
from collections.abc import Callable

import anyio
import pytest

from mcp_sse_proxy.aggregate.catalog import MergedLists
from mcp_sse_proxy.aggregate.member import Member, MemberBusy
from mcp_sse_proxy.aggregate.router import Router
from mcp_sse_proxy.aggregate.session import Session
from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.messages import Message
from tests.aggregate.harness import Peer, aggregate, profile

pytestmark = pytest.mark.anyio


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}/mcp"


async def nowhere(_member: Member, _message: Message) -> None:
    raise AssertionError("the relay is not running")


async def test_a_member_stream_is_bounded_and_a_full_one_answers_busy() -> None:
    """Before: `send_nowait` into an infinite stream took every message while nobody read them."""
    member = Member(profile("a", dead_url()), Router(), nowhere, {}, queue_size=4, queue_wait=0.05)
    for n in range(4):
        member.post_nowait(jsonrpc.notification("notifications/n", {"n": n}))
    with pytest.raises(MemberBusy):
        member.post_nowait(jsonrpc.notification("notifications/n", {"n": 4}))
    with pytest.raises(MemberBusy):
        await member.post(jsonrpc.notification("notifications/n", {"n": 5}))  # waited, then gave up
    member.close()


async def test_a_full_member_stream_makes_the_sender_wait_for_room() -> None:
    member = Member(profile("a", dead_url()), Router(), nowhere, {}, queue_size=1, queue_wait=30.0)
    member.post_nowait(jsonrpc.notification("notifications/first"))
    posted = anyio.Event()

    async def second() -> None:
        await member.post(jsonrpc.notification("notifications/second"))
        posted.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert not posted.is_set()  # back-pressure: no room, no send
        async with member._receive:  # what the relay does: read one
            assert (await member._receive.receive()).method == "notifications/first"
            with anyio.fail_after(10):
                await posted.wait()
    member.close()


def test_server_requests_awaiting_the_client_are_bounded() -> None:
    """Before: every server request the client never answered stayed in the router forever."""
    router = Router(max_server_requests=2, server_request_ttl=60.0)
    assert router.server_request("a", 1, now=0.0) is not None
    assert router.server_request("a", 2, now=1.0) is not None
    assert router.server_request("b", 1, now=2.0) is None
    assert router.server_requests_waiting() == 2


def test_server_requests_awaiting_the_client_expire() -> None:
    router = Router(server_request_ttl=10.0)
    first = router.server_request("a", 1, now=0.0)
    second = router.server_request("b", 7, now=5.0)
    assert router.next_server_request_deadline() == 10.0
    assert router.expire_server_requests(9.9) == []
    assert router.expire_server_requests(10.0) == [(first, "a", 1)]
    assert router.take_client_answer(first) is None  # a late answer goes nowhere
    assert router.next_server_request_deadline() == 15.0
    assert router.expire_server_requests(100.0) == [(second, "b", 7)]
    assert router.server_requests_waiting() == 0 and router.next_server_request_deadline() is None


async def test_a_local_handler_that_fails_is_answered_and_the_aggregate_lives_on(monkeypatch) -> None:
    """Before: the exception ended the aggregator's task group, and the whole aggregate with it."""
    original = Session._ping
    failures = []

    async def broken_once(self: Session, message: Message) -> dict:
        if not failures:
            failures.append(message.id)
            raise RuntimeError("a bug in a local handler")
        return await original(self, message)

    monkeypatch.setattr(Session, "_ping", broken_once)
    async with aggregate([profile("a", dead_url()), profile("b", dead_url())], initialize=False) as client:
        first = await client.request("ping", timeout=10)
        assert first["error"]["code"] == jsonrpc.INTERNAL_ERROR
        assert (await client.request("ping", timeout=10))["result"] == {}
    assert failures == [1]


async def test_a_failure_after_the_route_was_taken_is_answered(
    start_peer: Callable[..., Peer], monkeypatch
) -> None:
    """Before: the server's answer was lost with the exception, and the client waited for ever."""
    a = start_peer("alpha")
    b = start_peer("beta")
    original = MergedLists.expose_result

    def broken(self: MergedLists, alias: str, method: str, result):
        if method == "tools/call":
            raise RuntimeError("a bug while rewriting a result")
        return original(self, alias, method, result)

    async with aggregate([profile("a", a.url), profile("b", b.url)]) as client:
        monkeypatch.setattr(MergedLists, "expose_result", broken)
        answer = await client.request(
            "tools/call", {"name": "a__echo", "arguments": {"text": "x"}}, timeout=10
        )
        assert answer["error"]["code"] == jsonrpc.INTERNAL_ERROR
        monkeypatch.setattr(MergedLists, "expose_result", original)
        assert await client.text("b__echo", {"text": "still here"}) == "beta:still here"
