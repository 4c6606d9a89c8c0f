"""Fixtures of the aggregation tests: peer servers on 127.0.0.1, stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.aggregate.harness import Peer


@pytest.fixture
def start_peer() -> Iterator[Callable[..., Peer]]:
    """`start_peer(name, transport="streamable", *args)`: our peer (`tests.aggregate.peer`) named `name`."""
    peers: list[Peer] = []

    def start(name: str, transport: str = "streamable", *args: str) -> Peer:
        peer = Peer("tests.aggregate.peer", ("--name", name, *args), transport)
        peers.append(peer)
        return peer.start()

    try:
        yield start
    finally:
        for peer in peers:
            peer.stop()


@pytest.fixture
def start_sdk_server() -> Iterator[Callable[..., Peer]]:
    """`start_sdk_server(transport, *args)`: the project's SDK test server (`tests.servers.sdk_server`)."""
    peers: list[Peer] = []

    def start(transport: str = "streamable", *args: str) -> Peer:
        peer = Peer("tests.servers.sdk_server", tuple(args), transport)
        peers.append(peer)
        return peer.start()

    try:
        yield start
    finally:
        for peer in peers:
            peer.stop()
