"""Id spaces between the client and several profiles (no I/O)."""

from __future__ import annotations

from mcp_sse_proxy.aggregate.router import Router


def test_each_profile_has_its_own_id_space_mapped_back_to_the_client() -> None:
    router = Router()
    a = router.forward("a", 1, "tools/call")
    b = router.forward("b", "1", "tools/call")
    assert a.upstream_id == 1 and b.upstream_id == 1
    assert router.take_response("b", 1).client_id == "1"  # type: ignore[union-attr]
    assert router.take_response("a", 1).client_id == 1  # type: ignore[union-attr]
    assert router.take_response("a", 1) is None  # answered once


def test_own_requests_share_the_space_but_have_no_client_id() -> None:
    router = Router()
    own = router.own("a", "tools/list", context="waiter")
    forwarded = router.forward("a", 7, "tools/call")
    assert own.upstream_id != forwarded.upstream_id
    assert router.take_response("a", own.upstream_id).context == "waiter"  # type: ignore[union-attr]


def test_client_ids_in_use_are_known_until_answered() -> None:
    router = Router()
    router.forward("a", 5, "tools/call")
    assert router.client_id_in_use(5) and not router.client_id_in_use("5")
    router.take_response("a", 1)
    assert not router.client_id_in_use(5)


def test_a_cancelled_request_is_translated_and_its_late_answer_dropped() -> None:
    router = Router()
    router.forward("a", "x", "tools/call")
    out = router.forward("b", "y", "tools/call")
    cancelled = router.cancel("y")
    assert cancelled is out and cancelled.alias == "b" and cancelled.upstream_id == 1
    assert router.take_response("b", 1) is None
    assert router.cancel("unknown") is None


def test_a_cancelled_local_request_is_not_answered() -> None:
    router = Router()
    router.begin_local(3)
    assert router.cancel(3) is None
    assert router.end_local(3) is False
    router.begin_local(4)
    assert router.end_local(4) is True


def test_progress_is_accepted_only_from_the_profile_given_the_token() -> None:
    router = Router()
    out = router.forward("a", 1, "tools/call", progress_token="tok")
    assert router.progress_target("a", "tok") is out
    assert router.progress_target("b", "tok") is None
    router.take_response("a", out.upstream_id)
    assert router.progress_target("a", "tok") is None


def test_server_requests_get_proxy_ids_and_answers_go_back_to_their_profile() -> None:
    router = Router()
    first = router.server_request("a", 0)
    second = router.server_request("b", 0)
    assert first != second
    assert router.take_client_answer(second) == ("b", 0)
    assert router.take_client_answer(second) is None
    assert router.server_cancelled("a", 0) == first
    assert router.take_client_answer(first) is None


def test_responses_with_foreign_ids_are_ignored() -> None:
    router = Router()
    router.forward("a", 1, "tools/call")
    assert router.take_response("a", "1") is None
    assert router.take_response("a", True) is None
    assert router.take_response("b", 1) is None
