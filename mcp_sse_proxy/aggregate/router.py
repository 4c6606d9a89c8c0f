"""Id bookkeeping between the client and several profiles (pure).

Each profile has its own upstream id space: every request the aggregator sends to a profile's relay gets a
fresh integer id there, mapped back to the client's id (or to one of the aggregator's own requests) when the
answer comes. Requests a server sends to the client (sampling, elicitation, roots) get proxy-issued ids toward
the client, and the client's answers go back to the profile under the server's own id; at most
`max_server_requests` of them wait for the client, each until its deadline (the caller's clock).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..protocol.messages import IdKey, JsonId, id_key

__all__ = ["IdKey", "Outbound", "Router", "id_key"]


@dataclass(slots=True)
class Outbound:
    """A request the aggregator sent to one profile."""

    alias: str
    upstream_id: int
    method: str
    #: The client's id, or None for the aggregator's own requests.
    client_id: JsonId | None = None
    progress_token: object | None = None
    #: Whatever the sender needs when the answer comes (exposed name, a waiter, ...).
    context: Any = None


class Router:
    def __init__(
        self,
        server_request_prefix: str = "agg",
        *,
        max_server_requests: int = 256,
        server_request_ttl: float = 600.0,
    ) -> None:
        self._counters: dict[str, Iterator[int]] = {}
        self._out: dict[tuple[str, int], Outbound] = {}
        self._by_client: dict[IdKey, Outbound | None] = {}
        self._tokens: dict[tuple[str, IdKey], Outbound] = {}
        self._proxy_ids = itertools.count(1)
        self._prefix = server_request_prefix
        #: proxy id → (alias, server id, deadline), oldest first (deadlines grow with insertion).
        self._to_client: dict[str, tuple[str, JsonId, float]] = {}
        self._from_server: dict[tuple[str, IdKey], str] = {}
        self._max_server_requests = max_server_requests
        self._server_request_ttl = server_request_ttl

    # ---- client requests ----------------------------------------------------------------------------------

    def client_id_in_use(self, client_id: JsonId) -> bool:
        return id_key(client_id) in self._by_client

    def begin_local(self, client_id: JsonId) -> None:
        """A client request the aggregator answers itself (lists, initialize, ...)."""
        self._by_client[id_key(client_id)] = None

    def is_local(self, client_id: JsonId) -> bool:
        """Whether `client_id` awaits an answer of the aggregator's own (not forwarded, not cancelled)."""
        key = id_key(client_id)
        return key in self._by_client and self._by_client[key] is None

    def end_local(self, client_id: JsonId) -> bool:
        """Forget a local request; False if it was cancelled meanwhile (its answer must not be sent)."""
        key = id_key(client_id)
        if key in self._by_client and self._by_client[key] is None:
            del self._by_client[key]
            return True
        return False

    def forward(
        self,
        alias: str,
        client_id: JsonId,
        method: str,
        progress_token: object | None = None,
        context: Any = None,
    ) -> Outbound:
        """Record a client request sent to `alias`; its upstream id is `.upstream_id`."""
        out = self._issue(alias, method, context)
        out.client_id = client_id
        out.progress_token = progress_token
        self._by_client[id_key(client_id)] = out
        if progress_token is not None:
            self._tokens[(alias, id_key(progress_token))] = out
        return out

    def own(self, alias: str, method: str, context: Any = None) -> Outbound:
        """Record one of the aggregator's own requests to `alias`."""
        return self._issue(alias, method, context)

    def _issue(self, alias: str, method: str, context: Any) -> Outbound:
        counter = self._counters.setdefault(alias, itertools.count(1))
        out = Outbound(alias=alias, upstream_id=next(counter), method=method, context=context)
        self._out[(alias, out.upstream_id)] = out
        return out

    def take_response(self, alias: str, upstream_id: object) -> Outbound | None:
        """The request a response from `alias` answers, forgotten now; None if unknown or cancelled."""
        if not isinstance(upstream_id, int) or isinstance(upstream_id, bool):
            return None
        out = self._out.pop((alias, upstream_id), None)
        if out is not None:
            self._forget(out)
        return out

    def cancel(self, client_id: JsonId) -> Outbound | None:
        """The client cancelled `client_id`: the forwarded request to cancel upstream, if any."""
        key = id_key(client_id)
        if key not in self._by_client:
            return None
        out = self._by_client.pop(key)
        if out is None:
            return None
        self._out.pop((out.alias, out.upstream_id), None)
        self._forget(out)
        return out

    def abandon(self, out: Outbound) -> None:
        """Give up on a request (own request timed out): a late answer is dropped."""
        self._out.pop((out.alias, out.upstream_id), None)
        self._forget(out)

    def _forget(self, out: Outbound) -> None:
        if out.client_id is not None and self._by_client.get(id_key(out.client_id)) is out:
            del self._by_client[id_key(out.client_id)]
        if out.progress_token is not None:
            self._tokens.pop((out.alias, id_key(out.progress_token)), None)

    def progress_target(self, alias: str, token: object) -> Outbound | None:
        """The client request a progress notification from `alias` belongs to (None: not `alias`'s)."""
        return self._tokens.get((alias, id_key(token)))

    def pending_for(self, alias: str) -> list[Outbound]:
        return [out for (owner, _), out in self._out.items() if owner == alias]

    # ---- server → client requests -------------------------------------------------------------------------

    def server_request(self, alias: str, server_id: JsonId, now: float = 0.0) -> str | None:
        """A proxy-issued id toward the client for a request `alias`'s server sent; None when full."""
        if len(self._to_client) >= self._max_server_requests:
            return None
        proxy_id = f"{self._prefix}-{alias}-{next(self._proxy_ids)}"
        self._to_client[proxy_id] = (alias, server_id, now + self._server_request_ttl)
        self._from_server[(alias, id_key(server_id))] = proxy_id
        return proxy_id

    def take_client_answer(self, proxy_id: object) -> tuple[str, JsonId] | None:
        """(alias, server id) for the client's answer to a proxy-issued id; None if unknown."""
        if not isinstance(proxy_id, str):
            return None
        target = self._to_client.pop(proxy_id, None)
        if target is None:
            return None
        alias, server_id, _deadline = target
        self._from_server.pop((alias, id_key(server_id)), None)
        return alias, server_id

    def server_cancelled(self, alias: str, server_id: object) -> str | None:
        """The proxy id of a server request the server now cancels (forgotten); None if unknown."""
        proxy_id = self._from_server.pop((alias, id_key(server_id)), None)
        if proxy_id is not None:
            self._to_client.pop(proxy_id, None)
        return proxy_id

    def server_requests_waiting(self) -> int:
        return len(self._to_client)

    def next_server_request_deadline(self) -> float | None:
        """When the oldest server request awaiting the client expires; None if none waits."""
        for _alias, _server_id, deadline in self._to_client.values():
            return deadline
        return None

    def expire_server_requests(self, now: float) -> list[tuple[str, str, JsonId]]:
        """Forget the server requests whose deadline has passed: (proxy id, alias, server id) of each."""
        expired: list[tuple[str, str, JsonId]] = []
        for proxy_id, (alias, server_id, deadline) in list(self._to_client.items()):
            if deadline > now:
                break
            del self._to_client[proxy_id]
            self._from_server.pop((alias, id_key(server_id)), None)
            expired.append((proxy_id, alias, server_id))
        return expired
