"""The `subscriptions/listen` streams a `ModernToHandshake` bridge emulates for a 2026-07-28 client.

A handshake-era server has `list_changed` notifications and `resources/subscribe` instead. Each listen the
client opens keeps its acknowledged filter here; the book says which resources to subscribe or unsubscribe
upstream (one upstream subscription per URI, however many listens want it) and which listens an upstream
notification belongs to. Listens outlive a server session: `subscriptions()` is what to subscribe again.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..messages import JsonId
from .modern_client import listen_wants

#: Bound on the closed listens remembered for a cancellation that may still pass.
MAX_CLOSED = 256


class ListenBook:
    """The client's open listen streams and the resource subscriptions they need upstream."""

    def __init__(self) -> None:
        self._filters: dict[JsonId, dict[str, Any]] = {}
        #: Listens closed by `close` whose cancellation may still pass (bounded).
        self._closed: deque[JsonId] = deque(maxlen=MAX_CLOSED)

    def __contains__(self, listen_id: object) -> bool:
        return listen_id in self._filters

    def open(self, listen_id: JsonId, honoured: dict[str, Any]) -> list[str]:
        """A listen opens with this acknowledged filter; returns the URIs to subscribe upstream now."""
        before = set(
            self.subscriptions()
        )  # what is subscribed upstream now, this listen's old filter included
        self._filters.pop(listen_id, None)
        self._filters[listen_id] = honoured
        return [uri for uri in _uris(honoured) if uri not in before]

    def close(self, listen_id: JsonId) -> list[str] | None:
        """The client ended a listen; returns the URIs no other listen wants (unsubscribe them), or None
        when `listen_id` is not an open listen."""
        honoured = self._filters.pop(listen_id, None)
        if honoured is None:
            return None
        self._closed.append(listen_id)
        still = set(self.subscriptions())
        return [uri for uri in _uris(honoured) if uri not in still]

    def was_closed(self, listen_id: JsonId) -> bool:
        """Whether `listen_id` named a listen closed already (its cancellation must not go upstream)."""
        if listen_id in self._closed:
            self._closed.remove(listen_id)
            return True
        return False

    def subscriptions(self) -> list[str]:
        """Every URI some listen wants, once each, in the order first asked for."""
        return list(dict.fromkeys(uri for honoured in self._filters.values() for uri in _uris(honoured)))

    def targets(self, method: str, params: Any) -> list[JsonId]:
        """The listens an upstream notification belongs on."""
        return [
            listen_id
            for listen_id, honoured in self._filters.items()
            if listen_wants(honoured, method, params)
        ]

    def is_empty(self) -> bool:
        return not self._filters


def _uris(honoured: dict[str, Any]) -> list[str]:
    uris = honoured.get("resourceSubscriptions")
    return [uri for uri in uris if isinstance(uri, str)] if isinstance(uris, list) else []
