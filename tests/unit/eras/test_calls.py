"""`CallBook`: what a `ModernToHandshake` bridge keeps per call, driven by events, with no I/O.

Example tests for each rule, then a hypothesis state machine: random calls, server requests (on a call's
stream or, as over legacy SSE, on none), client retries, reused ids, cancels and forgets, responses, holds
expiring and session resets, with the invariants checked after every step.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mcp_sse_proxy.protocol.eras.calls import INPUT_KEY, AnswerServer, AskClient, CallBook, Finished, Stale
from mcp_sse_proxy.protocol.ids import ProxyIds
from mcp_sse_proxy.protocol.messages import JsonId

SAMPLING = "sampling/createMessage"
ANSWER = {"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"}
LIMIT = 10.0


def book() -> CallBook:
    return CallBook(ProxyIds("test-"), hold_limit=LIMIT)


def test_a_call_is_answered_under_its_client_id() -> None:
    calls = book()
    assert calls.start(1, "tools/call", None) == 1
    assert calls.server_response(1) == Finished(1, "tools/call")
    assert calls.is_empty()


def test_server_request_on_a_call_stream_asks_that_call() -> None:
    calls = book()
    calls.start(1, "tools/call", None)
    calls.start(2, "tools/call", None)
    asked = calls.server_request("s1", SAMPLING, {"x": 1}, 2, now=0.0)
    assert isinstance(asked, AskClient) and asked.client_id == 2 and asked.params == {"x": 1}
    assert calls.waiting_clients() == {1}


def test_legacy_server_request_goes_to_the_oldest_live_call() -> None:
    calls = book()
    calls.start(1, "tools/list", None)  # may not ask for input
    calls.start(2, "tools/call", None)
    calls.start(3, "tools/call", None)
    asked = calls.server_request("s1", SAMPLING, None, None, now=0.0)
    assert isinstance(asked, AskClient) and asked.client_id == 2


def test_a_forgotten_call_never_takes_a_later_server_request() -> None:
    """The bug: over legacy SSE a sampling request went to the oldest call, even one the client cancelled."""
    calls = book()
    calls.start(1, "tools/call", None)
    calls.forget(1)
    calls.start(2, "tools/call", None)
    asked = calls.server_request("s1", SAMPLING, None, None, now=0.0)
    assert isinstance(asked, AskClient) and asked.client_id == 2
    assert calls.server_response(1) is None  # the forgotten call's late answer is dropped


def test_a_forgotten_call_refuses_requests_on_its_stream() -> None:
    calls = book()
    calls.start(1, "tools/call", None)
    calls.forget(1)
    refused = calls.server_request("s1", SAMPLING, None, 1, now=0.0)
    assert isinstance(refused, AnswerServer) and refused.error is not None
    assert calls.is_empty()


def test_retry_answers_the_server_and_redirects_the_result() -> None:
    calls = book()
    calls.start(1, "tools/call", None)
    asked = calls.server_request("s1", SAMPLING, None, None, now=0.0)
    assert isinstance(asked, AskClient)
    outcome = calls.retry(2, asked.state, {INPUT_KEY: ANSWER}, now=1.0)
    assert outcome == [AnswerServer("s1", result=ANSWER)]
    assert calls.server_response(1) == Finished(2, "tools/call")
    assert calls.is_empty()
    assert isinstance(calls.retry(3, asked.state, {INPUT_KEY: ANSWER}, now=2.0), Stale)


def test_a_retry_without_the_answer_refuses_the_server_request() -> None:
    calls = book()
    calls.start(1, "tools/call", None)
    asked = calls.server_request("s1", SAMPLING, None, None, now=0.0)
    assert isinstance(asked, AskClient)
    [refusal] = calls.retry(2, asked.state, {}, now=1.0)  # type: ignore[misc]
    assert isinstance(refusal, AnswerServer) and refusal.error is not None


def test_a_second_server_request_waits_and_is_shown_to_the_retry() -> None:
    calls = book()
    calls.start(1, "tools/call", None)
    first = calls.server_request("s1", SAMPLING, None, 1, now=0.0)
    assert calls.server_request("s2", "roots/list", None, 1, now=0.0) is None
    assert isinstance(first, AskClient)
    outcome = calls.retry(2, first.state, {INPUT_KEY: ANSWER}, now=1.0)
    assert isinstance(outcome, list) and outcome[0] == AnswerServer("s1", result=ANSWER)
    second = outcome[1]
    assert isinstance(second, AskClient) and second.client_id == 2 and second.method == "roots/list"


def test_a_reused_client_id_gets_its_own_upstream_id_and_cancel_names_it() -> None:
    calls = book()
    calls.start(1, "tools/call", None)
    asked = calls.server_request("s1", SAMPLING, None, None, now=0.0)
    assert isinstance(asked, AskClient)  # client request 1 is over (answered with input_required)
    upstream = calls.start(1, "tools/call", None)
    assert upstream != 1
    calls.forget(1)
    assert calls.cancel(1) == upstream
    assert calls.cancel(1) == 1


def test_unknown_input_methods_and_ping_free_sessions_are_refused() -> None:
    calls = book()
    refused = calls.server_request("s1", "tasks/get", None, None, now=0.0)
    assert isinstance(refused, AnswerServer) and refused.error is not None
    refused = calls.server_request("s2", SAMPLING, None, None, now=0.0)  # no call in flight
    assert isinstance(refused, AnswerServer) and refused.error is not None


def test_a_hold_the_client_never_answers_expires() -> None:
    calls = book()
    calls.start(1, "tools/call", None)
    asked = calls.server_request("s1", SAMPLING, None, None, now=0.0)
    assert isinstance(asked, AskClient)
    assert calls.next_deadline() == LIMIT
    assert calls.expire(LIMIT - 1) == []
    [refusal] = calls.expire(LIMIT)
    assert refusal.server_request_id == "s1" and refusal.error is not None
    assert calls.next_deadline() is None
    assert isinstance(calls.retry(2, asked.state, {INPUT_KEY: ANSWER}, now=LIMIT), Stale)
    assert calls.server_response(1) is None
    assert calls.is_empty()


def test_session_reset_drops_everything() -> None:
    calls = book()
    calls.start(1, "tools/call", "debug")
    calls.start(2, "tools/call", None)
    asked = calls.server_request("s1", SAMPLING, None, 2, now=0.0)
    assert isinstance(asked, AskClient)
    assert calls.level_to_apply() == "debug"
    calls.reset()
    assert calls.is_empty() and calls.held_count() == 0
    assert calls.is_ours(asked.state)
    assert isinstance(calls.retry(3, asked.state, {INPUT_KEY: ANSWER}, now=1.0), Stale)
    assert calls.level_to_apply() is None


def test_levels_follow_the_calls_in_flight() -> None:
    calls = book()
    calls.start(1, "tools/call", "warning")
    assert calls.level_to_apply() == "warning"
    assert calls.level_to_apply() is None  # already applied
    calls.start(2, "tools/call", "debug")
    assert calls.level_to_apply() == "debug"
    assert calls.wants_log("info") and not calls.wants_log("nonsense")
    calls.server_response(2)
    assert not calls.wants_log("info") and calls.wants_log("error")
    calls.start(3, "tools/call", "bogus")
    assert calls.level_to_apply() == "warning"


# ---- the state machine ---------------------------------------------------------------------------------------


@dataclass
class ModelCall:
    """What the test knows of one upstream call."""

    method: str
    waiting: JsonId | None  # the client id waiting for its answer
    held: list[str] = field(default_factory=list)  # server request ids held, first one shown
    shown_at: float = 0.0
    state: str | None = None
    in_book: bool = True  # False once forgotten or expired with nobody waiting


class CallBookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = book()
        self.now = 0.0
        self.next_client = 0
        self.next_server = 0
        #: Upstream calls the server is running, by upstream id, in start order.
        self.calls: OrderedDict[JsonId, ModelCall] = OrderedDict()
        #: `requestState` shown to the client → upstream id.
        self.asked: dict[str, JsonId] = {}
        self.stale: set[str] = set()
        #: Forgotten client ids → the upstream id their cancellation must name.
        self.forgotten: dict[JsonId, JsonId] = {}
        #: Client ids whose request was answered with `input_required` (free to be used again).
        self.answered_ids: set[JsonId] = set()

    def _client_id(self) -> int:
        self.next_client += 1
        return self.next_client

    def _waiting(self) -> dict[JsonId, JsonId]:
        return {c.waiting: up for up, c in self.calls.items() if c.waiting is not None}

    def _live(self) -> list[JsonId]:
        return [up for up, c in self.calls.items() if c.in_book]

    # ---- client events ------------------------------------------------------------------------

    @rule(method=st.sampled_from(["tools/call", "prompts/get", "resources/read", "tools/list"]))
    def start_call(self, method: str) -> None:
        client_id = self._client_id()
        upstream = self.book.start(client_id, method, None)
        assert upstream not in self.calls
        self.calls[upstream] = ModelCall(method, client_id)

    def _reusable(self) -> list[JsonId]:
        # The spec forbids reusing an id in a session; the book still copes with a client that reuses one
        # answered with `input_required` while the book keeps that call (it does not track calls it forgot).
        waiting = set(self._waiting())
        return sorted(
            (
                c
                for c in self.answered_ids
                if c not in waiting and (c not in self.calls or self.calls[c].in_book)
            ),
            key=str,
        )

    @precondition(lambda self: self._reusable())
    @rule(data=st.data())
    def start_call_reusing_an_answered_id(self, data: st.DataObject) -> None:
        """A client id answered with `input_required` used again while its call still runs upstream."""
        client_id = data.draw(st.sampled_from(self._reusable()))
        self.forgotten.pop(client_id, None)
        upstream = self.book.start(client_id, "tools/call", None)
        assert upstream not in self.calls
        self.calls[upstream] = ModelCall("tools/call", client_id)

    @precondition(lambda self: self.asked)
    @rule(data=st.data(), answered=st.booleans())
    def client_retries(self, data: st.DataObject, answered: bool) -> None:
        state = data.draw(st.sampled_from(sorted(self.asked)))
        upstream = self.asked.pop(state)
        call = self.calls[upstream]
        retry_id = self._client_id()
        outcome = self.book.retry(retry_id, state, {INPUT_KEY: ANSWER} if answered else {}, self.now)
        assert isinstance(outcome, list)
        first = outcome[0]
        assert isinstance(first, AnswerServer) and first.server_request_id == call.held.pop(0)
        assert (first.result is not None) == answered
        self.stale.add(state)
        call.waiting, call.state = retry_id, None
        if call.held:
            [_, shown] = outcome
            assert isinstance(shown, AskClient) and shown.client_id == retry_id
            self._shown(upstream, shown)
        else:
            assert len(outcome) == 1

    @precondition(lambda self: self.stale)
    @rule(data=st.data())
    def client_retries_with_a_stale_state(self, data: st.DataObject) -> None:
        state = data.draw(st.sampled_from(sorted(self.stale)))
        waiting_before = self.book.waiting_clients()
        assert isinstance(self.book.retry(self._client_id(), state, {INPUT_KEY: ANSWER}, self.now), Stale)
        assert self.book.waiting_clients() == waiting_before

    @precondition(lambda self: any(c.waiting is not None for c in self.calls.values()))
    @rule(data=st.data(), then_cancel=st.booleans())
    def client_gives_up(self, data: st.DataObject, then_cancel: bool) -> None:
        """The relay forgets a call (client cancel or timeout); a cancellation may follow."""
        client_id = data.draw(st.sampled_from(sorted(self._waiting(), key=str)))
        upstream = self._waiting()[client_id]
        self.book.forget(client_id)
        self.calls[upstream].waiting = None
        self.calls[upstream].in_book = False
        if then_cancel:
            assert self.book.cancel(client_id) == upstream
        elif upstream != client_id:
            self.forgotten[client_id] = upstream

    @precondition(lambda self: any(c.waiting is not None for c in self.calls.values()))
    @rule(data=st.data())
    def client_cancels(self, data: st.DataObject) -> None:
        """The cancellation passes before the relay's forget."""
        client_id = data.draw(st.sampled_from(sorted(self._waiting(), key=str)))
        upstream = self._waiting()[client_id]
        assert self.book.cancel(client_id) == upstream
        self.calls[upstream].waiting = None
        self.calls[upstream].in_book = False
        self.book.forget(client_id)  # the relay's forget, after: nothing left to drop

    # ---- server events ------------------------------------------------------------------------

    @precondition(lambda self: self.calls)
    @rule(data=st.data(), on_stream=st.booleans(), method=st.sampled_from([SAMPLING, "roots/list", "x/y"]))
    def server_asks(self, data: st.DataObject, on_stream: bool, method: str) -> None:
        self.next_server += 1
        server_id = f"s{self.next_server}"
        if on_stream:
            upstream: JsonId | None = data.draw(st.sampled_from(list(self.calls)))
        else:
            upstream = None
        decision = self.book.server_request(server_id, method, None, upstream, self.now)
        if upstream is None:
            # Legacy SSE: the oldest live call that may ask and has a client waiting.
            upstream = next(
                (
                    up
                    for up, c in self.calls.items()
                    if c.in_book and c.waiting is not None and _mrtr(c.method)
                ),
                None,
            )
        call = self.calls.get(upstream) if upstream is not None else None
        may_ask = (
            method != "x/y"
            and call is not None
            and call.in_book
            and _mrtr(call.method)
            and (call.waiting is not None or bool(call.held))
        )
        if not may_ask:
            assert isinstance(decision, AnswerServer) and decision.error is not None
            return
        assert call is not None and upstream is not None
        call.held.append(server_id)
        if len(call.held) > 1:
            assert decision is None
            return
        assert isinstance(decision, AskClient) and decision.client_id == call.waiting
        self._shown(upstream, decision)

    @precondition(lambda self: self.calls)
    @rule(data=st.data())
    def server_responds(self, data: st.DataObject) -> None:
        upstream = data.draw(st.sampled_from(list(self.calls)))
        call = self.calls.pop(upstream)
        finished = self.book.server_response(upstream)
        if call.in_book and call.waiting is not None:
            assert finished == Finished(call.waiting, call.method)
        else:
            assert finished is None
        if call.state is not None:
            del self.asked[call.state]
            self.stale.add(call.state)

    @precondition(lambda self: self._live())
    @rule(data=st.data())
    def sending_fails(self, data: st.DataObject) -> None:
        """The POST of a call failed or its stream broke: the relay answers the client; the book drops it."""
        upstream = data.draw(st.sampled_from(self._live()))
        call = self.calls.pop(upstream)
        self.book.abandon(upstream)
        if call.state is not None:
            del self.asked[call.state]
            self.stale.add(call.state)

    @rule(seconds=st.sampled_from([0.5, 3.0, LIMIT]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        expected = []
        for call in self.calls.values():
            if call.held and call.in_book and call.shown_at + LIMIT <= self.now:
                expected += call.held
                call.held = []
                if call.state is not None:
                    del self.asked[call.state]
                    self.stale.add(call.state)
                    call.state = None
        refusals = self.book.expire(self.now)
        assert sorted(r.server_request_id for r in refusals) == sorted(expected)
        assert all(r.error is not None for r in refusals)

    @rule()
    def session_reset(self) -> None:
        self.book.reset()
        self.stale |= set(self.asked)
        self.calls.clear()
        self.asked.clear()
        self.forgotten.clear()

    # ---- invariants ---------------------------------------------------------------------------

    @invariant()
    def book_is_consistent(self) -> None:
        self.book.check()

    @invariant()
    def the_same_clients_wait(self) -> None:
        assert self.book.waiting_clients() == {c.waiting for c in self.calls.values() if c.in_book} - {None}

    @invariant()
    def every_held_request_is_tied_to_a_live_call(self) -> None:
        held = sum(len(c.held) for c in self.calls.values() if c.in_book)
        assert self.book.held_count() == held
        for state, upstream in self.asked.items():
            assert self.calls[upstream].in_book and self.calls[upstream].state == state

    def teardown(self) -> None:
        """Everything ends: holds are answered, the server answers every call, cancellations pass."""
        for state in list(self.asked):
            self.client_retries_state(state)
        for upstream in list(self.calls):
            self.book.server_response(upstream)
        for client_id in self.forgotten:
            self.book.cancel(client_id)
        assert self.book.is_empty(), "state left after everything was answered"

    def client_retries_state(self, state: str) -> None:
        upstream = self.asked.pop(state)
        call = self.calls[upstream]
        retry_id = self._client_id()
        outcome = self.book.retry(retry_id, state, {INPUT_KEY: ANSWER}, self.now)
        assert isinstance(outcome, list)
        call.held.pop(0)
        call.waiting, call.state = retry_id, None
        if call.held:
            shown = outcome[1]
            assert isinstance(shown, AskClient)
            self._shown(upstream, shown)
            self.client_retries_state(shown.state)

    def _shown(self, upstream: JsonId, asked: AskClient) -> None:
        call = self.calls[upstream]
        assert call.waiting is not None
        self.answered_ids.add(call.waiting)
        call.waiting, call.state, call.shown_at = None, asked.state, self.now
        self.asked[asked.state] = upstream
        assert asked.key == INPUT_KEY


def _mrtr(method: str) -> bool:
    return method in ("tools/call", "prompts/get", "resources/read")


CallBookMachine.TestCase.settings = settings(max_examples=1000, stateful_step_count=40, deadline=None)
test_call_book_state_machine = CallBookMachine.TestCase


@pytest.mark.parametrize("reused", [True, False])
def test_forget_of_an_unknown_id_is_ignored(reused: bool) -> None:
    calls = book()
    if reused:
        calls.start(1, "tools/call", None)
        calls.server_response(1)
    calls.forget(1)
    calls.forget("never")
    assert calls.is_empty()
