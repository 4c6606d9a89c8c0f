"""Bookkeeping of client requests awaiting an upstream answer: deadlines, progress, sent state.

Pure: the caller passes the clock. The relay asks for expired entries and answers them with errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .messages import IdKey, JsonId, id_key


@dataclass(slots=True)
class Pending:
    id: JsonId
    method: str
    #: Absolute deadline for the whole request (reset by progress).
    deadline: float
    #: Absolute deadline for waiting in the queue while the upstream is not ready.
    queue_deadline: float
    progress_token: object | None = None
    sent: bool = False
    #: Upstream session generation the request was sent on.
    generation: int = -1
    #: A 2026-07-28 request (cancelled by closing its stream, re-issuable once under `alias`).
    modern: bool = False
    #: Already sent again once after the server forgot the session.
    resent: bool = False
    #: The proxy's id it was re-issued under, while that re-issue is in flight.
    alias: str | None = None
    #: Outlives a lost session: a long-lived stream (`subscriptions/listen`) that whoever serves it (the era
    #: bridge) takes up again on the next session, so losing the session does not answer it. Decided once,
    #: when the request is registered.
    outlives_session: bool = False

    def effective_deadline(self) -> float:
        return self.deadline if self.sent else min(self.deadline, self.queue_deadline)


class PendingTable:
    """Client requests in flight, keyed by the client's id (1 and "1" are different ids)."""

    def __init__(self, request_timeout: float, queue_timeout: float) -> None:
        self.request_timeout = request_timeout
        self.queue_timeout = queue_timeout
        self._by_id: dict[IdKey, Pending] = {}
        self._by_token: dict[IdKey, Pending] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._by_id.values()))

    def __contains__(self, msg_id: JsonId) -> bool:
        return id_key(msg_id) in self._by_id

    def add(self, msg_id: JsonId, method: str, now: float, progress_token: object | None = None) -> Pending:
        entry = Pending(
            id=msg_id,
            method=method,
            deadline=now + self.request_timeout,
            queue_deadline=now + self.queue_timeout,
            progress_token=progress_token,
        )
        self._by_id[id_key(msg_id)] = entry
        if isinstance(progress_token, (str, int)) and not isinstance(progress_token, bool):
            self._by_token[id_key(progress_token)] = entry
        return entry

    def get(self, msg_id: JsonId) -> Pending | None:
        return self._by_id.get(id_key(msg_id))

    def pop(self, msg_id: JsonId) -> Pending | None:
        entry = self._by_id.pop(id_key(msg_id), None)
        if entry is not None and isinstance(entry.progress_token, (str, int)):
            key = id_key(entry.progress_token)
            if self._by_token.get(key) is entry:
                del self._by_token[key]
        return entry

    def touch_progress(self, token: object, now: float) -> bool:
        """A progress notification for `token` resets its request's deadline; False if unknown."""
        if not isinstance(token, (str, int)) or isinstance(token, bool):
            return False
        entry = self._by_token.get(id_key(token))
        if entry is None:
            return False
        # Only ever later: a request without a deadline (a subscription) does not get one from its progress.
        entry.deadline = max(entry.deadline, now + self.request_timeout)
        return True

    def expired(self, now: float) -> list[Pending]:
        return [entry for entry in self._by_id.values() if entry.effective_deadline() <= now]

    def next_deadline(self) -> float | None:
        return min((entry.effective_deadline() for entry in self._by_id.values()), default=None)

    def sent_on(self, generation: int) -> list[Pending]:
        return [e for e in self._by_id.values() if e.sent and e.generation == generation]
