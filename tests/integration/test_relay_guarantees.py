"""The relay's promise, exactly one answer per request, in the cases a real server cannot provoke on demand.

One `Relay` runs in-process against `FakeUpstream` (see `fake_upstream.py`): a slow stdout reader, batches
with duplicate ids, a detection that never returns, a full queue, an undecodable server line, tool filters,
the tap and `forget`.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mcp_sse_proxy import relay as relay_module
from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.messages import Kind, Message
from mcp_sse_proxy.relaydriver import sender as sender_module
from mcp_sse_proxy.tap import Direction
from tests.integration.fake_upstream import echo_answer, quick_profile, run_relay
from tests.waiting import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def req(request_id: Any, method: str, **params: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params:
        message["params"] = params
    return message


async def test_an_answer_waits_for_a_slow_stdout_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-pressure on stdout longer than the shutdown grace must not cost the answer (it did)."""
    monkeypatch.setattr(relay_module, "SHUTDOWN_GRACE", 0.1)
    delivered: list[Message] = []
    blocked = anyio.Event()
    release = anyio.Event()
    done = anyio.Event()

    async def slow_write(message: Message) -> None:
        blocked.set()
        await release.wait()
        delivered.append(message)
        done.set()

    async with run_relay(monkeypatch, write=slow_write) as h:
        await h.send(req(1, "ping"))
        with anyio.fail_after(5):
            await blocked.wait()
        await anyio.sleep(0.5)  # the scenario, not synchronisation: the reader stays slow for 5x the grace
        release.set()
        with anyio.fail_after(5):
            await done.wait()
    assert delivered[0].id == 1 and "result" in delivered[0].body


async def test_duplicate_ids_in_a_batch_get_an_error_not_an_overwrite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with run_relay(monkeypatch) as h:
        await h.send([req(1, "tools/list"), req(1, "ping"), req(2, "ping")])
        first = await h.next()
        assert isinstance(first, dict) and first["id"] == 1 and first["error"]["code"] == -32600, first
        batch = await h.next()
        assert sorted(item["id"] for item in batch) == [1, 2]
        assert {item["id"]: item["result"]["echo"] for item in batch} == {1: "tools/list", 2: "ping"}
        sent = await h.upstream.wait_sent(lambda m: m.kind is Kind.BATCH)
        assert [item["id"] for item in sent.body] == [1, 2]


async def test_batch_items_time_out_as_sent_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch the server never answers: each item answered once, as a request the server had (it hung)."""
    async with run_relay(monkeypatch, quick_profile(request_timeout=0.5), answer=None) as h:
        await h.send([req("a", "ping"), req("b", "tools/list"), {"jsonrpc": "2.0", "method": "x/y"}])
        answers = [await h.next(timeout=5), await h.next(timeout=5)]
        assert sorted(a["id"] for a in answers) == ["a", "b"]
        for answer in answers:
            assert "no response from the server" in answer["error"]["message"], answer


async def test_unknown_ids_in_a_batch_answer_never_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    async def answer(message: Message) -> list[Message] | None:
        if message.kind is Kind.BATCH:
            items = [{"jsonrpc": "2.0", "id": i, "result": {}} for i in (7, 99)]
            return [jsonrpc.from_obj(items)]
        return None

    async with run_relay(monkeypatch, answer=answer) as h:
        await h.send([req(7, "ping")])
        batch = await h.next()
        assert batch == [{"jsonrpc": "2.0", "id": 7, "result": {}}]


async def test_a_detection_that_never_returns_is_bounded_and_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[int] = []

    async def hang_once(first: Message) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            await anyio.sleep_forever()

    profile = quick_profile(connect_timeout=0.2, read_timeout=0.3, queue_timeout=10)
    async with run_relay(monkeypatch, profile, connect=hang_once) as h:
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {}}
        await h.send(req(1, "initialize", **init))
        answer = await h.next(timeout=5)
        assert answer["id"] == 1 and "within 0.5 s while connecting" in answer["error"]["message"], answer
        # The connector is free again: the next attempt goes through.
        await h.send(req(2, "initialize", **init))
        answer = await h.next(timeout=5)
        assert answer["id"] == 2 and "result" in answer, answer
        assert len(attempts) == 2


async def test_upstream_down_at_start_initialize_waits_for_the_queue_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcp_sse_proxy.errors import UpstreamUnavailable

    attempts: list[int] = []

    async def refuse_three_times(first: Message) -> None:
        attempts.append(1)
        if len(attempts) <= 3:
            raise UpstreamUnavailable("cannot connect to http://127.0.0.1:9/mcp: connection refused")

    async with run_relay(monkeypatch, connect=refuse_three_times) as h:
        await h.send(req(1, "initialize", protocolVersion="2025-06-18", capabilities={}, clientInfo={}))
        answer = await h.next(timeout=8)
        assert answer["id"] == 1 and "result" in answer, answer
        assert len(attempts) == 4


async def test_the_queue_is_bounded_and_stops_reading_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay_module, "MAX_BUFFERED", 4)
    gate = anyio.Event()

    async def wait_for_gate(first: Message) -> None:
        await gate.wait()

    async with run_relay(monkeypatch, connect=wait_for_gate) as h:
        taken = 0
        with anyio.move_on_after(1.0):
            for n in range(20):
                await h.send(req(n, "ping"))
                taken += 1
        # Four wait in the queue (the first is being detected with): the fifth send or so blocks.
        assert taken <= 6, taken
        gate.set()
        ids = {(await h.next())["id"] for _ in range(taken)}
        assert ids == set(range(taken))


async def test_an_undecodable_server_answer_is_an_error_and_the_relay_lives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deep = b'{"jsonrpc":"2.0","id":%s,"result":{"x":' + b"[" * 300_000 + b"]" * 300_000 + b"}}"
    bad_utf8 = b'{"jsonrpc":"2.0","id":%s,"result":{"x":"' + b"\xff" * 300_000 + b'"}}'

    async def answer(message: Message) -> list[Message] | None:
        if message.method == "initialize":
            return [jsonrpc.parse(deep.replace(b"%s", b'"%s"' % str(message.id).encode()))]
        if message.method == "prompts/get":
            return [jsonrpc.parse(bad_utf8.replace(b"%s", str(message.id).encode()))]
        return [jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": {}})]

    async with run_relay(monkeypatch, answer=answer) as h:
        await h.send(req("i", "initialize", protocolVersion="2025-06-18", capabilities={}, clientInfo={}))
        first = await h.next()
        assert first["id"] == "i" and first["error"]["code"] == -32700, first
        await h.send(req(2, "prompts/get", name="x"))
        second = await h.next()
        assert second["id"] == 2 and second["error"]["code"] == -32700, second
        await h.send(req(3, "ping"))
        assert (await h.next()) == {"jsonrpc": "2.0", "id": 3, "result": {}}


async def test_tool_filters_apply_to_a_single_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = quick_profile(exclude_tools=("secret_*",))
    async with run_relay(monkeypatch, profile) as h:
        await h.send(req(1, "tools/list"))
        listed = await h.next()
        assert [t["name"] for t in listed["result"]["tools"]] == ["read", "write"]
        await h.send(req(2, "tools/call", name="secret_rm", arguments={}))
        refused = await h.next()
        assert refused["id"] == 2 and refused["error"]["code"] == -32602, refused
        assert "secret_rm" in refused["error"]["message"]
        await h.send(req(3, "tools/call", name="read", arguments={}))
        assert (await h.next())["result"] == {"echo": "tools/call"}
        assert not any(
            m.method == "tools/call" and m.params.get("name") == "secret_rm" for m in h.upstream.sent
        )
        # list_changed passes, and the client's re-read is filtered again.
        await h.upstream.deliver(jsonrpc.notification("notifications/tools/list_changed"))
        assert (await h.next())["method"] == "notifications/tools/list_changed"
        await h.send(req(4, "tools/list"))
        assert [t["name"] for t in (await h.next())["result"]["tools"]] == ["read", "write"]


async def test_the_tap_sees_what_goes_up_and_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Direction, str, Any]] = []
    async with run_relay(monkeypatch, tap=lambda d, p, m: seen.append((d, p, m.id))) as h:
        await h.send(req(5, "ping"))
        await h.next()
    assert (Direction.PROXY_TO_SERVER, "fake", 5) in seen
    assert (Direction.SERVER_TO_PROXY, "fake", 5) in seen


async def test_a_cancelled_or_timed_out_request_is_forgotten_upstream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def only_ping(message: Message) -> list[Message] | None:
        if message.method == "ping":
            return [jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": {}})]
        return None

    async with run_relay(monkeypatch, quick_profile(request_timeout=0.5), answer=only_ping) as h:
        await h.send(req(1, "ping"))
        await h.next()
        await h.send(req("slow", "tools/call", name="x", arguments={}))
        await h.upstream.wait_sent(lambda m: m.id == "slow")
        await h.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "slow"}})
        await h.send(req("late", "tools/call", name="x", arguments={}))
        timed_out = await h.next(timeout=5)
        assert timed_out["id"] == "late" and "error" in timed_out
        await eventually(lambda: set(h.upstream.forgotten) == {"slow", "late"}, what="both calls forgotten")


async def test_a_replayed_initialize_never_answered_fails_the_attempt_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proxy's own requests are bounded: a new session whose server takes the replayed initialize and
    never answers it costs one failed attempt (named), not a connector stuck forever."""
    reports: list[tuple[bool, str | None]] = []
    failed = anyio.Event()

    def on_state(ready: bool, reason: str | None) -> None:
        reports.append((ready, reason))
        if reason is not None and "initialize" in reason:
            failed.set()

    async def silent_to_own_requests(message: Message) -> list[Message] | None:
        if isinstance(message.id, str) and message.id.startswith("mcp-sse-proxy-"):
            return None  # the proxy's own (replayed) initialize: never answered
        return await echo_answer(message)

    profile = quick_profile(read_timeout=0.3)
    async with run_relay(monkeypatch, profile, answer=silent_to_own_requests, on_state=on_state) as h:
        await h.send(req(1, "initialize", protocolVersion="2025-06-18", capabilities={}, clientInfo={}))
        assert "result" in await h.next()
        await h.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        h.upstream.on_lost("the stream closed")
        with anyio.fail_after(10):
            await failed.wait()
    reasons = [reason for ready, reason in reports if not ready]
    assert "no answer to the proxy's initialize within 0.3 s" in reasons, reports


async def test_a_send_never_reported_written_lets_the_next_one_go_after_the_order_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Client order is kept by starting each send once the previous one's request is written; a send that
    never says so (a slow connect) holds the next one for `ORDER_WAIT` only, checked by the one timer."""
    monkeypatch.setattr(sender_module, "ORDER_WAIT", 0.2)

    async def hang_on_slow(message: Message) -> list[Message] | None:
        if message.method == "tools/call":
            await anyio.sleep_forever()
        return await echo_answer(message)

    async with run_relay(monkeypatch, answer=hang_on_slow) as h:
        await h.send(req(1, "ping"))
        await h.next()
        await h.send(req("slow", "tools/call", name="x", arguments={}))
        await h.upstream.wait_sent(lambda m: m.id == "slow")
        await h.send(req(2, "ping"))
        answer = await h.next(timeout=5)
        assert answer == {"jsonrpc": "2.0", "id": 2, "result": {"echo": "ping"}}
        assert [m.id for m in h.upstream.sent] == [1, "slow", 2]


async def test_the_first_message_is_tapped_once_when_detection_leaves_it_to_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Detection is tried with the first message; whether it sent it or not, the tap sees it go up once."""
    seen: list[tuple[Direction, Any]] = []
    async with run_relay(monkeypatch, tap=lambda d, p, m: seen.append((d, m.id))) as h:
        await h.send(req(1, "ping"))
        await h.next()
        await h.send(req(2, "ping"))
        await h.next()
    assert seen.count((Direction.PROXY_TO_SERVER, 1)) == 1, seen
    assert seen.count((Direction.PROXY_TO_SERVER, 2)) == 1, seen
    assert seen.index((Direction.PROXY_TO_SERVER, 1)) < seen.index((Direction.SERVER_TO_PROXY, 1))
