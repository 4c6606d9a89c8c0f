"""`ListenBook`: the listen streams a `ModernToHandshake` bridge emulates, and the subscriptions they need."""

from __future__ import annotations

from mcp_sse_proxy.protocol.eras.listens import ListenBook

A, B = "file:///a", "file:///b"


def test_one_upstream_subscription_per_uri() -> None:
    listens = ListenBook()
    assert listens.open("L1", {"resourceSubscriptions": [A, B]}) == [A, B]
    assert listens.open("L2", {"resourceSubscriptions": [B], "toolsListChanged": True}) == []
    assert listens.subscriptions() == [A, B]
    assert listens.close("L1") == [A]  # B is still wanted by L2
    assert listens.close("L2") == [B]
    assert listens.is_empty()


def test_close_of_a_non_listen_and_the_cancellation_after_forget() -> None:
    listens = ListenBook()
    assert listens.close("nope") is None
    listens.open("L1", {})
    assert "L1" in listens
    assert listens.close("L1") == []
    assert listens.was_closed("L1")  # the cancellation that follows the relay's forget stays here
    assert not listens.was_closed("L1")
    assert listens.close("L1") is None


def test_notifications_go_to_the_listens_that_asked() -> None:
    listens = ListenBook()
    listens.open("tools", {"toolsListChanged": True})
    listens.open("a", {"resourceSubscriptions": [A]})
    assert listens.targets("notifications/tools/list_changed", None) == ["tools"]
    assert listens.targets("notifications/resources/updated", {"uri": A}) == ["a"]
    assert listens.targets("notifications/resources/updated", {"uri": B}) == []
    assert listens.targets("notifications/prompts/list_changed", None) == []


def test_reopening_a_listen_id_replaces_its_filter() -> None:
    listens = ListenBook()
    listens.open("L", {"resourceSubscriptions": [A]})
    assert listens.open("L", {"resourceSubscriptions": [A, B]}) == [B]
    assert listens.subscriptions() == [A, B]
