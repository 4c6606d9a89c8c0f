"""The state every part of the relay core shares, and the bookkeeping they all use.

`CoreState` holds what outlives one HTTP exchange (the pending table, the queue waiting for the upstream,
the outbox, generations, aliases of re-issued requests, the session memory) with the queries the driver
asks and the helpers that answer, forget and dispatch. The event handlers live in `client.py`
(client → upstream), `upstream.py` (upstream → client and failed sends) and `lifecycle.py` (connecting,
losing a session, timers, shutting down). No I/O here.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.ids import ProxyIds
from ..protocol.messages import JsonId, Kind, Message, id_key
from ..protocol.pending import Pending, PendingTable
from ..protocol.session import SessionMemory
from ..protocol.tool_filter import ToolFilter
from .actions import Action, Send, Write

log = logging.getLogger("mcp_sse_proxy.relay")

#: Requests that may be re-sent (after a 429/503, or a broken 2026-07-28 response stream): they change
#: nothing on the server. The era rules' set, plus `ping`.
IDEMPOTENT = eras.REISSUABLE_METHODS | {"ping"}
#: Answered at once when the upstream cannot be reached, even if it may come up soon: the client decides
#: what to try next (the SDK gives up on a `server/discover` probe after 10 s).
PROBES = frozenset({"server/discover"})
MAX_RETRY_AFTER = 30.0
MAX_BUSY_RETRIES = 3
#: Long-lived requests that whoever serves them takes up again on the next session (see
#: `Pending.outlives_session`); they have no deadline.
LASTING = frozenset({"subscriptions/listen"})
IN_USE = "request id is already in use by a pending request"


@dataclass(frozen=True, slots=True)
class Settings:
    request_timeout: float = 600.0
    queue_timeout: float = 10.0
    #: 0: retry forever.
    reconnect_attempts: int = 0
    include_tools: tuple[str, ...] = ()
    exclude_tools: tuple[str, ...] = ()
    #: Where answers the core writes say they came from.
    upstream: str = ""


class CoreState:
    """The relay core's state and shared bookkeeping (see the module docstring)."""

    def __init__(
        self, settings: Settings, ids: ProxyIds | None = None, forwarded_env: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.ids = ids or ProxyIds()
        self.memory = SessionMemory()
        self.pending = PendingTable(settings.request_timeout, settings.queue_timeout)
        self._forwarded_env = dict(forwarded_env or {})
        self._filter = ToolFilter(settings.include_tools, settings.exclude_tools)
        self._tool_lists: set[tuple[bool, JsonId]] = set()
        #: Client messages waiting for the upstream, and those handed to the outbox awaiting their turn.
        self.queue: deque[Message] = deque()
        self.outbox: deque[Send] = deque()
        #: Ids of re-issued requests → the client's id they answer.
        self.aliases: dict[str, JsonId] = {}
        self.generation = 0
        self.ready = False
        self.connected_once = False
        self.failures = 0
        self.gave_up: str | None = None
        self.last_error: str | None = None
        #: Declared by the upstream once connected (see `transports.base.Upstream`).
        self.loses_in_flight = False
        self.cancels_by_notification = False

        #: No deadline is earlier than this (a lower bound: the timer may fire early, never late).
        self._earliest = math.inf

    # ---- queries --------------------------------------------------------------------------------------------

    def buffered(self) -> int:
        """Client messages waiting (queue and outbox) that still have to go out."""
        if len(self.queue) + len(self.outbox) > 16:
            self.queue = deque(m for m in self.queue if self._is_live(m))
            self.outbox = deque(s for s in self.outbox if self._send_is_live(s))
        return len(self.queue) + len(self.outbox)

    def next_deadline(self) -> float:
        """When the timer must fire next (`timer_fired`): never later than the earliest deadline, maybe
        earlier (an answered request's), which costs one early firing instead of a scan per event."""
        return self._earliest

    def _armed(self, entry: Pending) -> None:
        """`entry`'s deadline was set, or may have moved earlier (it went back to the queue)."""
        deadline = entry.effective_deadline()
        if deadline < self._earliest:
            self._earliest = deadline

    def _rescan_deadlines(self) -> None:
        deadline = self.pending.next_deadline()
        self._earliest = math.inf if deadline is None else deadline

    def connect_needed(self) -> bool:
        if self.ready or self.gave_up is not None:
            return False
        return self.connected_once or any(self._is_live(m) for m in self.queue)

    def take_outbox(self) -> Send | None:
        """The next ordered send whose request still wants it, or None."""
        while self.outbox:
            send = self.outbox.popleft()
            if self._send_is_live(send):
                return send
        return None

    def put_back(self, send: Send) -> None:
        """A send taken from the outbox that cannot start yet (no free slot): the first out next time."""
        self.outbox.appendleft(send)

    def is_current(self, send: Send) -> bool:
        """Whether `send` may go out now (the session it was meant for is still the ready one)."""
        return self.ready and send.generation == self.generation

    def wants(self, send: Send) -> bool:
        return self._send_is_live(send)

    def _dispatch(self, message: Message, actions: list[Action]) -> None:
        request_id = message.id if message.kind is Kind.REQUEST else None
        self._mark_sent(message, self.generation)
        if message.kind is Kind.RESPONSE or message.method == "notifications/cancelled":
            # Nothing before them can depend on these; they must not wait behind a full outbox either
            # (a server waiting for a sampling answer holds the slots the answer would wait for).
            actions.append(Send(message, self.generation, request_id, ordered=False))
        else:
            self.outbox.append(Send(message, self.generation, request_id))

    def _flush_queue(self, actions: list[Action]) -> None:
        """The session is ready: everything queued goes out, in order (nothing else sends the queue)."""
        while self.queue:
            message = self.queue.popleft()
            if self._is_live(message):
                self._dispatch(message, actions)

    def _mark_sent(self, message: Message, generation: int, sent: bool = True) -> None:
        for entry in self._entries_of(message):
            entry.sent = sent
            entry.generation = generation
            if not sent:
                self._armed(entry)

    def _entries_of(self, message: Message) -> list[Pending]:
        if message.kind is Kind.REQUEST and message.id is not None:
            entry = self.pending.get(message.id)
            return [entry] if entry is not None else []
        if message.kind is Kind.BATCH:
            found = []
            for item in message.body:
                if isinstance(item, dict) and "method" in item and item.get("id") is not None:
                    entry = self.pending.get(item["id"])
                    if entry is not None:
                        found.append(entry)
            return found
        return []

    def unsent(self, sends: list[Send]) -> None:
        """Sends the driver took but could not start (the session changed): back to the queue's head."""
        for send in reversed(sends):
            if not self._send_is_live(send):
                continue
            self._mark_sent(send.message, -1, sent=False)
            self.queue.appendleft(send.message)

    # ---- helpers ----------------------------------------------------------------------------------------

    def _fail_message(
        self, message: Message, reason: str, actions: list[Action], code: int = jsonrpc.INTERNAL_ERROR
    ) -> None:
        if message.kind is Kind.REQUEST and message.id is not None:
            # A re-issued request fails under its new id: the answer goes to the client's.
            client_id = (
                self.aliases.get(message.id, message.id) if isinstance(message.id, str) else message.id
            )
            entry = self.pending.get(client_id)
            if entry is not None:
                self._answer_error(entry, reason, actions, code)
        elif message.kind is Kind.BATCH:
            for entry in self._entries_of(message):
                self._answer_error(entry, reason, actions, code)
        else:
            log.warning("could not deliver a %s to the server: %s", message.method or "response", reason)

    def _answer_error(
        self, entry: Pending, reason: str, actions: list[Action], code: int = jsonrpc.INTERNAL_ERROR
    ) -> None:
        if self.pending.get(entry.id) is not entry:
            return
        self._end(entry.id)
        log.warning("answering %s (id %r) with an error: %s", entry.method, entry.id, reason)
        data = {"upstream": self.settings.upstream}
        actions.append(Write(jsonrpc.error_response(entry.id, code, reason, data), answer=True))

    def _end(self, request_id: JsonId) -> None:
        """Forget a client request once it is answered (or about to be)."""
        entry = self.pending.pop(request_id)
        self._tool_lists.discard(id_key(request_id))
        if entry is not None and entry.alias is not None:
            self.aliases.pop(entry.alias, None)

    def _is_live(self, message: Message) -> bool:
        """Whether a queued message still has to go out (its request was not answered meanwhile)."""
        if message.kind is Kind.REQUEST and message.id is not None:
            return message.id in self.pending
        if message.kind is Kind.BATCH:
            return any(True for _ in self._entries_of(message)) or not _has_requests(message)
        return True

    def _send_is_live(self, send: Send) -> bool:
        if send.request_id is None:
            return self._is_live(send.message)
        return send.request_id in self.pending


def _has_requests(message: Message) -> bool:
    return any(isinstance(i, dict) and "method" in i and i.get("id") is not None for i in message.body)
