"""PendingTable: client requests awaiting an upstream answer, with the clock passed in."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.pending import Pending, PendingTable

REQUEST_TIMEOUT = 60.0
QUEUE_TIMEOUT = 10.0


@pytest.fixture
def table() -> PendingTable:
    return PendingTable(request_timeout=REQUEST_TIMEOUT, queue_timeout=QUEUE_TIMEOUT)


def test_add_get_pop(table: PendingTable) -> None:
    entry = table.add(1, "tools/call", now=100.0)
    assert isinstance(entry, Pending)
    assert (entry.id, entry.method, entry.sent, entry.generation) == (1, "tools/call", False, -1)
    assert entry.deadline == 160.0 and entry.queue_deadline == 110.0
    assert 1 in table and len(table) == 1 and table.get(1) is entry
    assert table.pop(1) is entry
    assert 1 not in table and len(table) == 0
    assert table.get(1) is None and table.pop(1) is None


def test_int_and_string_ids_are_different(table: PendingTable) -> None:
    as_int = table.add(1, "a", now=0)
    assert "1" not in table and table.get("1") is None
    as_str = table.add("1", "b", now=0)
    assert len(table) == 2
    assert table.get(1) is as_int and table.get("1") is as_str
    assert table.pop("1") is as_str
    assert table.get(1) is as_int


def test_iteration_is_a_snapshot(table: PendingTable) -> None:
    for i in range(3):
        table.add(i, "m", now=0)
    for entry in table:
        table.pop(entry.id)
    assert len(table) == 0


def test_state_is_per_entry(table: PendingTable) -> None:
    a, b = table.add(1, "m", now=0), table.add(2, "m", now=0)
    a.alias, a.modern = "x", True
    assert b.alias is None and not b.modern


# -- deadlines --------------------------------------------------------------------------------------


def test_queued_entry_expires_at_the_queue_deadline(table: PendingTable) -> None:
    entry = table.add("q", "tools/list", now=0)
    assert entry.effective_deadline() == QUEUE_TIMEOUT
    assert table.expired(QUEUE_TIMEOUT - 0.001) == []
    assert table.expired(QUEUE_TIMEOUT) == [entry]


def test_sent_entry_expires_at_the_request_deadline(table: PendingTable) -> None:
    entry = table.add("s", "tools/call", now=0)
    entry.sent = True
    assert entry.effective_deadline() == REQUEST_TIMEOUT
    assert table.expired(QUEUE_TIMEOUT + 1) == []
    assert table.expired(REQUEST_TIMEOUT) == [entry]


def test_queue_timeout_longer_than_request_timeout_is_capped() -> None:
    table = PendingTable(request_timeout=5, queue_timeout=30)
    entry = table.add(1, "m", now=0)
    assert entry.effective_deadline() == 5
    assert table.expired(5) == [entry]


def test_expired_does_not_remove(table: PendingTable) -> None:
    table.add(1, "m", now=0)
    assert len(table.expired(1000)) == 1
    assert len(table.expired(1000)) == 1 and 1 in table


def test_expired_picks_only_due_entries(table: PendingTable) -> None:
    old = table.add(1, "m", now=0)
    table.add(2, "m", now=5)
    sent = table.add(3, "m", now=0)
    sent.sent = True
    assert table.expired(QUEUE_TIMEOUT) == [old]
    assert {e.id for e in table.expired(QUEUE_TIMEOUT + 5)} == {1, 2}


def test_next_deadline(table: PendingTable) -> None:
    assert table.next_deadline() is None
    a = table.add(1, "m", now=0)
    a.sent = True
    assert table.next_deadline() == REQUEST_TIMEOUT
    table.add(2, "m", now=3)
    assert table.next_deadline() == 3 + QUEUE_TIMEOUT
    table.pop(2)
    assert table.next_deadline() == REQUEST_TIMEOUT
    table.pop(1)
    assert table.next_deadline() is None


# -- progress ---------------------------------------------------------------------------------------


def test_progress_resets_the_deadline(table: PendingTable) -> None:
    entry = table.add(1, "tools/call", now=0, progress_token="tok")
    entry.sent = True
    assert table.touch_progress("tok", now=50) is True
    assert entry.deadline == 50 + REQUEST_TIMEOUT
    assert table.expired(REQUEST_TIMEOUT) == []
    assert table.next_deadline() == 50 + REQUEST_TIMEOUT
    assert table.expired(50 + REQUEST_TIMEOUT) == [entry]


def test_progress_does_not_extend_the_queue_deadline(table: PendingTable) -> None:
    entry = table.add(1, "tools/call", now=0, progress_token=7)
    assert table.touch_progress(7, now=5)
    assert entry.effective_deadline() == QUEUE_TIMEOUT


def test_progress_for_an_unknown_token(table: PendingTable) -> None:
    table.add(1, "m", now=0)
    assert table.touch_progress("nope", now=1) is False
    assert table.touch_progress(None, now=1) is False


def test_progress_tokens_keep_string_and_int_apart(table: PendingTable) -> None:
    entry = table.add("a", "m", now=0, progress_token=1)
    entry.sent = True
    assert table.touch_progress("1", now=30) is False
    assert entry.deadline == REQUEST_TIMEOUT
    assert table.touch_progress(1, now=30) is True


def test_progress_token_forgotten_on_pop(table: PendingTable) -> None:
    table.add(1, "m", now=0, progress_token="t")
    table.pop(1)
    assert table.touch_progress("t", now=1) is False


def test_token_equal_to_an_id_is_independent(table: PendingTable) -> None:
    table.add("x", "m", now=0, progress_token="y")
    table.add("y", "m", now=0)
    assert table.touch_progress("y", now=1) is True
    assert table.touch_progress("x", now=1) is False


# -- sent_on ------------------------------------------------------------------------------------------


def test_sent_on_lists_sent_entries_of_one_generation(table: PendingTable) -> None:
    queued = table.add(1, "m", now=0)
    queued.generation = 2
    on_two = table.add(2, "m", now=0)
    on_two.sent, on_two.generation = True, 2
    on_three = table.add(3, "m", now=0)
    on_three.sent, on_three.generation = True, 3
    assert table.sent_on(2) == [on_two]
    assert table.sent_on(3) == [on_three]
    assert table.sent_on(4) == []


# -- properties ---------------------------------------------------------------------------------------

ids = st.one_of(st.integers(min_value=-5, max_value=5), st.integers(min_value=-5, max_value=5).map(str))


@given(st.lists(st.tuples(ids, st.floats(min_value=0, max_value=1e6)), max_size=30))
def test_table_behaves_like_a_typed_dict(ops: list[tuple[Any, float]]) -> None:
    table = PendingTable(REQUEST_TIMEOUT, QUEUE_TIMEOUT)
    reference: dict[tuple[type, Any], float] = {}
    for msg_id, now in ops:
        key = (type(msg_id), msg_id)
        if key in reference:
            assert table.pop(msg_id) is not None
            del reference[key]
        else:
            table.add(msg_id, "m", now)
            reference[key] = now
    assert len(table) == len(reference)
    for (_, msg_id), now in reference.items():
        entry = table.get(msg_id)
        assert entry is not None and entry.id == msg_id and type(entry.id) is type(msg_id)
        assert entry.effective_deadline() == now + min(REQUEST_TIMEOUT, QUEUE_TIMEOUT)
    expected_next = min(reference.values(), default=None)
    if expected_next is None:
        assert table.next_deadline() is None
    else:
        assert table.next_deadline() == expected_next + QUEUE_TIMEOUT


@given(
    starts=st.lists(st.floats(min_value=0, max_value=1000), min_size=1, max_size=10),
    sent=st.lists(st.booleans(), min_size=10, max_size=10),
    now=st.floats(min_value=0, max_value=2000),
)
def test_expired_is_exactly_the_entries_past_their_deadline(
    starts: list[float], sent: list[bool], now: float
) -> None:
    table = PendingTable(REQUEST_TIMEOUT, QUEUE_TIMEOUT)
    for i, start in enumerate(starts):
        table.add(i, "m", start).sent = sent[i]
    due = {
        i for i, start in enumerate(starts) if start + (REQUEST_TIMEOUT if sent[i] else QUEUE_TIMEOUT) <= now
    }
    assert {e.id for e in table.expired(now)} == due
    deadlines = [start + (REQUEST_TIMEOUT if sent[i] else QUEUE_TIMEOUT) for i, start in enumerate(starts)]
    assert table.next_deadline() == min(deadlines)
    assert table.expired(min(deadlines))


# -- bugs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [{"a": 1}, [1, 2]])
def test_unhashable_progress_token_is_tolerated(table: PendingTable, token: Any) -> None:
    entry = table.add(1, "tools/call", now=0, progress_token=token)
    assert table.get(1) is entry
    assert table.touch_progress(token, now=1) in (True, False)


def test_unhashable_token_in_progress_notification_is_unknown(table: PendingTable) -> None:
    assert table.touch_progress({"a": 1}, now=1) is False
