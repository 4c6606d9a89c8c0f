"""ProxyIds: the proxy's own request ids never collide with the client's or the server's."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.ids import ProxyIds
from mcp_sse_proxy.protocol.messages import parse, request


def test_ids_are_unique_strings_under_the_prefix() -> None:
    ids = ProxyIds()
    issued = [ids.next() for _ in range(1000)]
    assert len(set(issued)) == 1000
    assert all(isinstance(i, str) and i.startswith(ids.prefix) for i in issued)
    assert all(ids.owns(i) for i in issued)


def test_explicit_prefix_and_counter() -> None:
    ids = ProxyIds("px-")
    assert [ids.next(), ids.next(), ids.next()] == ["px-1", "px-2", "px-3"]
    assert ids.owns("px-99") and not ids.owns("py-1")


def test_default_prefix_is_random_per_instance() -> None:
    a, b = ProxyIds(), ProxyIds()
    assert a.prefix != b.prefix
    assert not a.owns(b.next()) and not b.owns(a.next())


def test_prefix_is_long_enough_to_be_unguessable() -> None:
    prefix = ProxyIds().prefix
    assert prefix.startswith("mcp-sse-proxy-")
    assert len(prefix) >= len("mcp-sse-proxy-") + 8


def test_owns_nothing_that_is_not_a_string() -> None:
    ids = ProxyIds("1")
    for value in (1, 10, None, True, 1.0, ["1"]):
        assert not ids.owns(value)  # type: ignore[arg-type]


def test_issued_ids_survive_a_round_trip_as_request_ids() -> None:
    ids = ProxyIds()
    msg = parse(request(ids.next(), "initialize", {}).raw)
    assert msg.is_request and ids.owns(msg.id)


client_ids = st.one_of(
    st.integers(),
    st.text(max_size=40),
    st.from_regex(r"\Amcp-sse-proxy-[0-9a-f]{0,8}-?[0-9]*\Z"),
)


@given(client_id=client_ids, count=st.integers(min_value=1, max_value=20))
def test_client_ids_are_never_owned_nor_issued(client_id: Any, count: int) -> None:
    ids = ProxyIds()
    issued = {ids.next() for _ in range(count)}
    # A client would have to guess the 32 random bits of this process's prefix.
    if isinstance(client_id, str) and client_id.startswith(ids.prefix):
        return
    assert not ids.owns(client_id)
    assert client_id not in issued
