"""Property-based test of `RelayCore`: random interleavings of everything that can happen to a relay.

A hypothesis `RuleBasedStateMachine` plays the client (requests, notifications, cancels, batches with
duplicate ids, answers to server requests), the upstream (answers, duplicated or for unknown ids, progress,
server requests, failed sends of every kind, lost sessions) and the driver (connection attempts that
succeed or fail, the outbox pump, the clock). After every step it checks:

1. every client request is answered at most once (a cancelled one not at all), and a request is
   outstanding exactly while the core holds it as pending (so each gets exactly one answer once everything
   has settled);
2. nothing the client did not ask for reaches it as an answer (unknown, finished or duplicated ids dropped);
3. the proxy's own ids (keepalive, re-issued requests) never reach the client;
4. aliases of re-issued requests exist only for pending requests;
5. the timer is never armed late: `next_deadline()` is at most the earliest deadline of any pending request;
6. a lost session on an upstream that loses in-flight requests answers every request sent on it, except the
   long-lived ones (`subscriptions/listen`, `Pending.outlives_session`), which stay pending;
7. while the session is ready nothing live waits in the queue (only the connector sends the queue);
8. a request that timed out is cancelled upstream by a notification only while the upstream is ready and,
   for a 2026-07-28 request, only where the upstream asks for notifications (a bridge);
and at the end, after the clock has run past every deadline or the relay has shut down: nothing is
pending, queued or aliased, and every request has had its one answer.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.ids import ProxyIds
from mcp_sse_proxy.protocol.messages import JsonId, Kind, Message
from mcp_sse_proxy.relaycore import (
    CloseStream,
    Failure,
    Forget,
    RelayCore,
    Report,
    Resolve,
    Send,
    Settings,
    Wake,
    Write,
)

REQUEST_TIMEOUT = 10.0
QUEUE_TIMEOUT = 4.0
PREFIX = "proxy-own-"
CLIENT_IDS = st.one_of(st.integers(0, 5), st.sampled_from(["a", "b", "1"]))
METHODS = st.sampled_from(
    [
        "ping",
        "tools/list",
        "tools/call",
        "prompts/get",
        "resources/read",
        "initialize",
        "subscriptions/listen",
    ]
)
MODERN_META = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}


def key(msg_id: JsonId) -> tuple[bool, JsonId]:
    return (isinstance(msg_id, str), msg_id)


def request(msg_id: JsonId, method: str, modern: bool, token: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": "secret_tool" if msg_id == 5 else "tool"}
    if modern:
        params.update(MODERN_META)
    if token is not None:
        params.setdefault("_meta", {})["progressToken"] = token
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


class RelayMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = RelayCore(
            Settings(
                request_timeout=REQUEST_TIMEOUT,
                queue_timeout=QUEUE_TIMEOUT,
                exclude_tools=("secret_*",),
                upstream="http://upstream",
            ),
            ids=ProxyIds(PREFIX),
        )
        self.now = 0.0
        self.asked: Counter[tuple[bool, JsonId]] = Counter()
        self.answered: Counter[tuple[bool, JsonId]] = Counter()
        #: Sends the model's upstream holds (started, not finished).
        self.in_flight: list[Send] = []
        self.server_requests: list[str] = []
        self.server_counter = 0
        self.answers_written = 0
        #: A connection attempt the connector has begun and not finished (`first`, as `first_attempt`
        #: returned it), or None: between the two, every other event may happen.
        self.attempt: list[Message | None] | None = None

    # ---- carrying out actions ---------------------------------------------------------------------------

    def apply(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Write):
                self.client_receives(action)
            elif isinstance(action, Send):
                assert not action.ordered, "ordered sends go through the outbox"
                self.in_flight.append(action)
            elif isinstance(action, CloseStream):
                self.in_flight = [s for s in self.in_flight if s.request_id != action.request_id]
            elif isinstance(action, Resolve):
                assert isinstance(action.message.id, str) and action.message.id.startswith(PREFIX)
            else:
                assert isinstance(action, (Forget, Wake, Report)), action

    def client_receives(self, write: Write) -> None:
        message = write.message
        items = message.body if message.kind is Kind.BATCH else [message.body]
        for item in items:
            item_id = item.get("id")
            assert not (isinstance(item_id, str) and item_id.startswith(PREFIX)), f"own id leaked: {item}"
            if "method" in item:
                assert not write.answer or message.kind is Kind.BATCH
                continue
            if item_id is None:
                continue
            assert write.answer, f"a response written as if it were not an answer: {item}"
            k = key(item_id)
            assert self.answered[k] < self.asked[k], f"an answer nobody asked for (or a second one): {item}"
            self.answered[k] += 1
            self.answers_written += 1

    # ---- the client --------------------------------------------------------------------------------------

    @rule(msg_id=CLIENT_IDS, method=METHODS, modern=st.booleans(), token=st.none() | st.integers(0, 2))
    def client_request(self, msg_id: JsonId, method: str, modern: bool, token: int | None) -> None:
        self.asked[key(msg_id)] += 1
        message = jsonrpc.from_obj(request(msg_id, method, modern, token))
        self.apply(self.core.client_message(message, self.now))

    @rule(
        items=st.lists(
            st.tuples(st.none() | CLIENT_IDS, st.sampled_from(["ping", "tools/list"])), min_size=1, max_size=4
        )
    )
    def client_batch(self, items: list[tuple[JsonId | None, str]]) -> None:
        body: list[dict[str, Any]] = []
        for msg_id, method in items:
            if msg_id is None:
                body.append({"jsonrpc": "2.0", "method": "notifications/" + method})
            else:
                self.asked[key(msg_id)] += 1
                body.append({"jsonrpc": "2.0", "id": msg_id, "method": method})
        self.apply(self.core.client_message(jsonrpc.from_obj(body), self.now))

    @rule()
    def client_notification(self) -> None:
        self.apply(self.core.client_message(jsonrpc.notification("notifications/initialized"), self.now))

    @rule(msg_id=CLIENT_IDS | st.just(PREFIX + "1"))
    def client_cancel(self, msg_id: JsonId) -> None:
        if self.core.pending.get(msg_id) is not None:
            self.answered[key(msg_id)] += 1  # a cancelled request is settled: no answer may follow
        note = jsonrpc.notification("notifications/cancelled", {"requestId": msg_id})
        self.apply(self.core.client_message(note, self.now))

    @precondition(lambda self: self.server_requests)
    @rule(data=st.data())
    def client_answers_server_request(self, data: st.DataObject) -> None:
        server_id = data.draw(st.sampled_from(self.server_requests))
        self.server_requests.remove(server_id)
        reply = jsonrpc.from_obj({"jsonrpc": "2.0", "id": server_id, "result": {}})
        self.apply(self.core.client_message(reply, self.now))

    # ---- the driver --------------------------------------------------------------------------------------

    @precondition(lambda self: self.core.connect_needed())
    @rule(
        succeeds=st.booleans(),
        first_sent=st.booleans(),
        may_come_up=st.booleans(),
        loses=st.booleans(),
        bridged=st.booleans(),
    )
    def connection_attempt(
        self, succeeds: bool, first_sent: bool, may_come_up: bool, loses: bool, bridged: bool
    ) -> None:
        if self.attempt is None:
            self.attempt_begins()
            if self.attempt is None:
                return
        self.attempt_ends(succeeds, first_sent, may_come_up, loses, bridged)

    @precondition(lambda self: self.attempt is None)
    @rule()
    def attempt_begins(self) -> None:
        """The connector starts an attempt (detection, or reopening the session); it ends in another step."""
        core = self.core
        if not core.connect_needed():
            return  # the connector only tries when the core asks for it
        if core.connected_once:
            core.reconnect_attempt()
            self.attempt = [None]
        else:
            first = core.first_attempt()
            if first is not None:
                self.attempt = [first]

    @precondition(lambda self: self.attempt is not None)
    @rule(
        succeeds=st.booleans(),
        first_sent=st.booleans(),
        may_come_up=st.booleans(),
        loses=st.booleans(),
        bridged=st.booleans(),
    )
    def attempt_ends(
        self, succeeds: bool, first_sent: bool, may_come_up: bool, loses: bool, bridged: bool
    ) -> None:
        core = self.core
        assert self.attempt is not None
        first = self.attempt[0]
        self.attempt = None
        if succeeds:
            if first is not None and first_sent:
                request_id = first.id if first.kind is Kind.REQUEST else None
                self.in_flight.append(Send(first, core.generation, request_id))
            actions = core.connected(
                first, first_sent, loses_in_flight=loses, cancels_by_notification=bridged
            )
        else:
            actions = core.connect_failed(first, "refused", may_come_up=may_come_up)
        self.apply(actions)

    @precondition(lambda self: self.core.outbox)
    @rule(slot_free=st.booleans())
    def pump_outbox(self, slot_free: bool) -> None:
        send = self.core.take_outbox()
        if send is None:
            return
        if not slot_free:
            self.core.put_back(send)  # every concurrency slot taken: it goes first next time
            return
        if self.core.is_current(send):
            self.in_flight.append(send)
        else:
            self.core.unsent([send])

    @rule(seconds=st.sampled_from([0.5, 3.0, QUEUE_TIMEOUT + 0.1, REQUEST_TIMEOUT + 0.1]))
    def clock(self, seconds: float) -> None:
        self.now += seconds
        if self.core.next_deadline() <= self.now:
            modern = {key(e.id): e.modern for e in self.core.pending}
            ready = self.core.ready
            actions = self.core.timer_fired(self.now)
            for action in actions:
                if isinstance(action, Send) and action.message.method == "notifications/cancelled":
                    timed_out = action.message.params["requestId"]
                    assert ready and key(timed_out) in modern, action
                    assert not modern[key(timed_out)] or self.core.cancels_by_notification, action
            self.apply(actions)

    # ---- the upstream ------------------------------------------------------------------------------------

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data(), keep=st.booleans(), error=st.booleans())
    def upstream_answers(self, data: st.DataObject, keep: bool, error: bool) -> None:
        send = data.draw(st.sampled_from(self.in_flight))
        if not keep:
            self.in_flight.remove(send)  # keep: the server answers the same request again later
        message = send.message
        if message.kind is Kind.REQUEST:
            body: Any = {"jsonrpc": "2.0", "id": message.id}
            body.update({"error": {"code": -1, "message": "no"}} if error else {"result": {"tools": []}})
        elif message.kind is Kind.BATCH:
            body = [{"jsonrpc": "2.0", "id": i["id"], "result": {}} for i in message.body if "id" in i]
            body.append({"jsonrpc": "2.0", "id": 99, "result": {}})  # and one nobody asked for
        else:
            return
        self.apply(self.core.upstream_message(jsonrpc.from_obj(body), self.now))

    @rule(msg_id=CLIENT_IDS | st.just(PREFIX + "7") | st.just(99))
    def upstream_answers_an_unknown_id(self, msg_id: JsonId) -> None:
        reply = jsonrpc.from_obj({"jsonrpc": "2.0", "id": msg_id, "result": {}})
        self.apply(self.core.upstream_message(reply, self.now))

    @rule(token=st.integers(0, 2))
    def upstream_progress(self, token: int) -> None:
        note = jsonrpc.notification("notifications/progress", {"progressToken": token, "progress": 1})
        self.apply(self.core.upstream_message(note, self.now))

    @rule()
    def upstream_asks(self) -> None:
        self.server_counter += 1
        server_id = f"srv-{self.server_counter}"
        self.server_requests.append(server_id)
        ask = jsonrpc.request(server_id, "sampling/createMessage", {})
        self.apply(self.core.upstream_message(ask, self.now))

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data(), failure=st.sampled_from(list(Failure)), retry_after=st.none() | st.just(1.0))
    def send_fails(self, data: st.DataObject, failure: Failure, retry_after: float | None) -> None:
        send = data.draw(st.sampled_from(self.in_flight))
        self.in_flight.remove(send)
        self.apply(self.core.send_failed(send, failure, f"failed: {failure.value}", retry_after=retry_after))

    @rule()
    def session_lost(self) -> None:
        core = self.core
        was_ready, loses = core.ready, core.loses_in_flight
        waiting = {id(e) for send in core.outbox for e in core._entries_of(send.message)}
        # Those still in the outbox were never sent: they go out again on the next session.
        on_it = [e for e in core.pending.sent_on(core.generation) if id(e) not in waiting]
        self.apply(core.session_lost(core.generation, "stream closed"))
        if was_ready and loses:
            for entry in on_it:
                still = core.pending.get(entry.id) is entry
                assert still == entry.outlives_session, (entry, still)

    # ---- invariants ----------------------------------------------------------------------------------------

    @invariant()
    def one_answer_per_request(self) -> None:
        pending = {key(e.id) for e in self.core.pending}
        for k in set(self.asked) | pending:
            outstanding = self.asked[k] - self.answered[k]
            assert outstanding == (1 if k in pending else 0), (k, self.asked[k], self.answered[k], pending)

    @invariant()
    def nothing_waits_in_the_queue_while_ready(self) -> None:
        # Only the connector sends the queue, and only when the core is not ready: a live message queued
        # while ready would wait for its queue timeout (and hold every later message behind it).
        if self.core.ready:
            assert not [m for m in self.core.queue if self.core._is_live(m)], list(self.core.queue)

    @invariant()
    def timer_never_late(self) -> None:
        exact = self.core.pending.next_deadline()
        if exact is not None:
            assert self.core.next_deadline() <= exact, (self.core.next_deadline(), exact)

    @invariant()
    def aliases_belong_to_pending_requests(self) -> None:
        for alias, client_id in self.core.aliases.items():
            entry = self.core.pending.get(client_id)
            assert entry is not None and entry.alias == alias, (alias, client_id)

    def teardown(self) -> None:
        # Let every deadline pass (or shut down): everything settles with exactly one answer each.
        if self.now < 1e9 and len(self.core.pending):
            self.now += 2 * REQUEST_TIMEOUT + QUEUE_TIMEOUT
            self.apply(self.core.timer_fired(self.now))
        self.attempt = None
        self.apply(self.core.shut_down("the proxy is shutting down"))
        assert len(self.core.pending) == 0
        assert not self.core.aliases and not self.core.queue and not self.core.outbox
        assert self.answered == self.asked, (self.asked, self.answered)


RelayMachine.TestCase.settings = settings(
    max_examples=1500,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRelayCore = RelayMachine.TestCase
