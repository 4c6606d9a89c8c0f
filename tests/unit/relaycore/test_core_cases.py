"""Single cases of `RelayCore` found in review, each a sequence the driver can produce."""

from __future__ import annotations

from typing import Any

from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.ids import ProxyIds
from mcp_sse_proxy.relaycore import Failure, RelayCore, Send, Settings, Write


def make_core() -> RelayCore:
    return RelayCore(
        Settings(request_timeout=60.0, queue_timeout=10.0, upstream="http://upstream"), ids=ProxyIds("own-")
    )


def connect(core: RelayCore) -> list[Any]:
    first = core.first_attempt()
    return core.connected(first, True, loses_in_flight=False, cancels_by_notification=False)


def ordered_sends(core: RelayCore) -> list[Send]:
    sends = []
    while (send := core.take_outbox()) is not None:
        sends.append(send)
    return sends


def test_a_late_session_expiry_after_the_reconnect_still_goes_out() -> None:
    """Two requests on one session both get 404; the second 404 arrives after the connector has already
    re-established the session. The second request must go out on the new session, not wait in the queue
    (where nothing sends it while the session is ready) until its queue timeout, holding every later
    message behind it."""
    core = make_core()
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "method": "ping"}), 0.0)
    connect(core)
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), 0.0)
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}), 0.0)
    first, second = ordered_sends(core)
    core.send_failed(first, Failure.SESSION_EXPIRED, "session expired")
    assert not core.ready
    core.reconnect_attempt()
    core.connected(None, False, loses_in_flight=False, cancels_by_notification=False)
    assert [s.request_id for s in ordered_sends(core)] == [1]
    actions = core.send_failed(second, Failure.SESSION_EXPIRED, "session expired")
    # The session it failed on is gone and a new one is ready: it goes out now.
    resent = [a for a in actions if isinstance(a, Send)] + ordered_sends(core)
    assert [s.request_id for s in resent] == [2]
    assert all(core.is_current(s) for s in resent)
    assert not core.queue
    # And a later request is not stuck behind it.
    later = core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 3, "method": "ping"}), 0.0)
    assert not [a for a in later if isinstance(a, Write)]
    assert [s.request_id for s in ordered_sends(core)] == [3]


def test_a_batch_whose_session_expired_goes_out_again() -> None:
    """A 404 means the server never processed the batch: as for a single request, it goes out again on the
    next session (before, its requests waited for their 600 s request timeout, sent on no live session)."""
    core = make_core()
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "method": "ping"}), 0.0)
    connect(core)
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    core.client_message(jsonrpc.from_obj(batch), 0.0)
    (send,) = ordered_sends(core)
    actions = core.send_failed(send, Failure.SESSION_EXPIRED, "session expired")
    answered = [a for a in actions if isinstance(a, Write)]
    core.reconnect_attempt()
    core.connected(None, False, loses_in_flight=False, cancels_by_notification=False)
    again = ordered_sends(core)
    assert not answered
    assert [s.message.body for s in again] == [batch]
    # A second 404 for it is answered (no endless re-sending).
    actions = core.send_failed(again[0], Failure.SESSION_EXPIRED, "session expired")
    errors = [a.message.body["id"] for a in actions if isinstance(a, Write)]
    assert sorted(errors) == [1, 2] and 1 not in core.pending and 2 not in core.pending


def test_once_the_upstream_is_given_up_notifications_do_not_pile_up() -> None:
    """After the last reconnect attempt nothing will send the queue again: a notification kept there would
    stay for good, and `MAX_BUFFERED` of them stop the relay reading stdin (later requests never answered)."""
    core = RelayCore(Settings(reconnect_attempts=1, upstream="http://upstream"), ids=ProxyIds("own-"))
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "method": "initialize"}), 0.0)
    first = core.first_attempt()
    core.connect_failed(first, "refused", may_come_up=True)
    assert core.gave_up is not None and not core.connect_needed()
    for _ in range(3):
        core.client_message(jsonrpc.notification("notifications/roots/list_changed"), 0.0)
    assert core.buffered() == 0
    actions = core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 1, "method": "ping"}), 0.0)
    assert [a.message.body["id"] for a in actions if isinstance(a, Write)] == [1]


def test_a_batch_sent_again_leaves_out_what_the_client_cancelled() -> None:
    core = make_core()
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "method": "ping"}), 0.0)
    connect(core)
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a"}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "b"}},
    ]
    core.client_message(jsonrpc.from_obj(batch), 0.0)
    (send,) = ordered_sends(core)
    core.client_message(jsonrpc.notification("notifications/cancelled", {"requestId": 1}), 0.0)
    core.send_failed(send, Failure.SESSION_EXPIRED, "session expired")
    core.reconnect_attempt()
    core.connected(None, False, loses_in_flight=False, cancels_by_notification=False)
    again = [s for s in ordered_sends(core) if s.message.kind.name == "BATCH"]
    assert [s.message.body for s in again] == [[batch[1]]]


def test_a_request_sent_again_after_a_404_keeps_its_place_before_what_followed_it() -> None:
    """The request was on the wire; what the client sent after it waited in the outbox. On the next
    session it goes out first, as the client ordered (before, the outbox went ahead of it)."""
    core = make_core()
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 0, "method": "ping"}), 0.0)
    connect(core)
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}), 0.0)
    (on_the_wire,) = ordered_sends(core)
    core.client_message(jsonrpc.notification("notifications/roots/list_changed"), 0.0)
    core.client_message(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}), 0.0)
    core.send_failed(on_the_wire, Failure.SESSION_EXPIRED, "session expired")
    core.reconnect_attempt()
    core.connected(None, False, loses_in_flight=False, cancels_by_notification=False)
    order = [s.message.id if s.message.id is not None else s.message.method for s in ordered_sends(core)]
    assert order == [1, "notifications/roots/list_changed", 2]


def test_progress_on_a_subscription_gives_it_no_deadline() -> None:
    """`subscriptions/listen` lasts as long as the client wants; a progress notification for its token
    reset its deadline from none to the request timeout (and the timer, which expects progress only to
    push deadlines later, was not armed for it). Found by the state machine."""
    core = make_core()
    listen = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "subscriptions/listen",
        "params": {"_meta": {"progressToken": 7}},
    }
    core.client_message(jsonrpc.from_obj(listen), 0.0)
    connect(core)
    note = jsonrpc.notification("notifications/progress", {"progressToken": 7, "progress": 1})
    core.upstream_message(note, 1.0)
    assert not [a for a in core.timer_fired(1000.0) if isinstance(a, Write)]
    assert 0 in core.pending
