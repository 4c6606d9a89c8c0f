"""`RelayCore`: every decision of one relay, as a pure function of its state, the event and the clock.

Each event is a method (`client_message`, `upstream_message`, `send_failed`, `session_lost`, `connected`,
`connect_failed`, `timer_fired`, `shut_down`, ...) that returns the actions the driver must carry out, in
order. The promise it keeps: every client request gets exactly one answer (the server's, or an error the
core writes), no answer the client did not ask for reaches it, and the proxy's own ids never leave it.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.envforward import inject_env
from ..protocol.ids import ProxyIds
from ..protocol.messages import InvalidMessage, JsonId, Kind, Message
from ..protocol.pending import Pending, PendingTable
from ..protocol.session import SessionMemory
from ..protocol.tool_filter import ToolFilter
from .actions import Action, CloseStream, Forget, Report, Resolve, Send, Wake, Write
from .events import Failure

log = logging.getLogger("mcp_sse_proxy.relay")

#: Requests that may be re-sent (after a 429/503, or a broken 2026-07-28 response stream): they change
#: nothing on the server. The era rules' set, plus `ping`.
IDEMPOTENT = eras.REISSUABLE_METHODS | {"ping"}
#: Answered at once when the upstream cannot be reached, even if it may come up soon: the client decides
#: what to try next (the SDK gives up on a `server/discover` probe after 10 s).
PROBES = frozenset({"server/discover"})
MAX_RETRY_AFTER = 30.0
MAX_BUSY_RETRIES = 3
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


class RelayCore:
    """The state of one relay between one client and one upstream (see the module docstring)."""

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

    # ---- queries --------------------------------------------------------------------------------------------

    def buffered(self) -> int:
        """Client messages waiting (queue and outbox) that still have to go out."""
        if len(self.queue) + len(self.outbox) > 16:
            self.queue = deque(m for m in self.queue if self._is_live(m))
            self.outbox = deque(s for s in self.outbox if self._send_is_live(s))
        return len(self.queue) + len(self.outbox)

    def next_deadline(self) -> float:
        deadline = self.pending.next_deadline()
        return math.inf if deadline is None else deadline

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

    def is_current(self, send: Send) -> bool:
        """Whether `send` may go out now (the session it was meant for is still the ready one)."""
        return self.ready and send.generation == self.generation

    def wants(self, send: Send) -> bool:
        return self._send_is_live(send)

    # ---- client → upstream -------------------------------------------------------------------------------

    def client_message(self, message: Message, now: float) -> list[Action]:
        actions: list[Action] = []
        try:
            accepted = self._accept(message, now, actions)
        except InvalidMessage as exc:
            # Routed undecoded because it is large, then found undecodable where a rule needed its body.
            log.error("invalid input from the client: %s", exc.reason)
            if message.kind is Kind.REQUEST and message.id is not None and not self.ids.owns(message.id):
                self._end(message.id)
                actions.append(Write(jsonrpc.error_response(message.id, exc.code, exc.reason), answer=True))
            return actions
        if accepted is None:
            return actions
        if self.gave_up is not None and accepted.kind is not Kind.NOTIFICATION:
            self._fail_message(accepted, self.gave_up, actions)
            return actions
        if self.ready and not self.queue:
            self._dispatch(accepted, actions)
        else:
            self.queue.append(accepted)
            actions.append(Wake())
        return actions

    def _accept(self, message: Message, now: float, actions: list[Action]) -> Message | None:
        if message.kind is Kind.REQUEST:
            assert message.id is not None
            if self.ids.owns(message.id) or message.id in self.pending:
                actions.append(
                    Write(jsonrpc.error_response(message.id, jsonrpc.INVALID_REQUEST, IN_USE), answer=True)
                )
                return None
            self._register(message, now)
            if message.method == "tools/call" and self._filter.active:
                name = message.params.get("name")
                if self._filter.hides(name):
                    self._end(message.id)
                    error = jsonrpc.error_response(
                        message.id, jsonrpc.INVALID_PARAMS, f"unknown tool: {name}"
                    )
                    actions.append(Write(error, answer=True))
                    return None
            if message.method == "tools/list" and self._filter.active:
                self._tool_lists.add(_key(message.id))
            if message.method == "tools/call" and self._forwarded_env:
                changed = inject_env(message.body, self._forwarded_env)
                if changed is not None:
                    message = message.with_body(changed)
        elif message.kind is Kind.BATCH:
            batch = self._register_batch(message, now, actions)
            if batch is None:
                return None
            message = batch
        elif message.kind is Kind.NOTIFICATION and message.method == "notifications/cancelled":
            if not self._client_cancelled(message, actions):
                return None
        self.memory.observe_client(message)
        return message

    def _register(self, message: Message, now: float) -> Pending:
        assert message.id is not None
        token = None
        if message.mentions(b'"progressToken"'):
            meta = message.params.get("_meta")
            token = meta.get("progressToken") if isinstance(meta, dict) else None
        entry = self.pending.add(message.id, message.method or "", now, token)
        entry.modern = jsonrpc.modern_version(message) is not None
        if message.method == "subscriptions/listen":
            entry.deadline = math.inf  # a subscription lasts as long as the client wants it
        return entry

    def _register_batch(self, message: Message, now: float, actions: list[Action]) -> Message | None:
        """Register a batch's requests; an id already in use (before or within the batch) is answered with
        an error and left out. The batch to send, or None when nothing of it is left."""
        kept: list[Any] = []
        for item in message.body:
            item_id = item.get("id") if isinstance(item, dict) and "method" in item else None
            if item_id is None:
                kept.append(item)
            elif self.ids.owns(item_id) or item_id in self.pending:
                actions.append(
                    Write(jsonrpc.error_response(item_id, jsonrpc.INVALID_REQUEST, IN_USE), answer=True)
                )
            else:
                self.pending.add(item_id, str(item["method"]), now)
                kept.append(item)
        if not kept:
            return None
        return message if len(kept) == len(message.body) else jsonrpc.from_obj(kept)

    def _client_cancelled(self, message: Message, actions: list[Action]) -> bool:
        """Bookkeeping for a client's `notifications/cancelled`; False when it need not go upstream."""
        request_id = message.params.get("requestId")
        if not isinstance(request_id, (str, int)) or isinstance(request_id, bool):
            return True
        entry = self.pending.get(request_id)
        if entry is None:
            return not self.ids.owns(request_id)
        self._end(entry.id)  # a late response for it is dropped
        # Close the request's response stream: its connection and slot are free at once, whether or not
        # the server stops (a stateless server cannot act on the notification).
        actions.append(CloseStream(entry.id))
        if entry.sent:
            actions.append(Forget(entry.id))
        if entry.modern and not self.cancels_by_notification:
            return False  # 2026-07-28: closing the stream IS the cancellation; nothing is POSTed
        return entry.sent

    def _dispatch(self, message: Message, actions: list[Action]) -> None:
        request_id = message.id if message.kind is Kind.REQUEST else None
        self._mark_sent(message, self.generation)
        if message.kind is Kind.RESPONSE or message.method == "notifications/cancelled":
            # Nothing before them can depend on these; they must not wait behind a full outbox either
            # (a server waiting for a sampling answer holds the slots the answer would wait for).
            actions.append(Send(message, self.generation, request_id, ordered=False))
        else:
            self.outbox.append(Send(message, self.generation, request_id))

    def _mark_sent(self, message: Message, generation: int, sent: bool = True) -> None:
        for entry in self._entries_of(message):
            entry.sent = sent
            entry.generation = generation

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

    # ---- upstream → client -------------------------------------------------------------------------------

    def upstream_message(self, message: Message, now: float) -> list[Action]:
        actions: list[Action] = []
        try:
            self._route_upstream(message, now, actions)
        except InvalidMessage as exc:
            # A large server message routed undecoded, found undecodable where a rule needed its body.
            client_id = (
                self.aliases.get(message.id, message.id) if isinstance(message.id, str) else message.id
            )
            entry = self.pending.get(client_id) if client_id is not None else None
            if message.kind is Kind.RESPONSE and entry is not None:
                reason = f"the server's answer cannot be decoded: {exc.reason}"
                self._answer_error(entry, reason, actions, exc.code)
            else:
                log.error("dropping a server message that cannot be decoded: %s", exc.reason)
        return actions

    def _route_upstream(self, message: Message, now: float, actions: list[Action]) -> None:
        kind = message.kind
        if kind is Kind.RESPONSE:
            msg_id = message.id
            if self.ids.owns(msg_id):
                assert isinstance(msg_id, str)
                client_id = self.aliases.get(msg_id)
                if client_id is None:
                    actions.append(Resolve(message))
                    return
                entry = self.pending.get(client_id)
                if entry is None or entry.alias != msg_id:
                    self.aliases.pop(msg_id, None)
                    return
                message = message.with_id(client_id)
                msg_id = client_id
            if msg_id is None:
                actions.append(Write(message))  # an error about something unreadable: the client may care
                return
            entry = self.pending.get(msg_id)
            if entry is None:
                log.debug("dropping a response for unknown or finished id %r", msg_id)
                return
            if entry.method == "initialize":
                self.memory.observe_initialize_result(message)
            if _key(msg_id) in self._tool_lists:
                filtered = self._filter.filter_list(message.body)
                if filtered is not None:
                    message = jsonrpc.from_obj(filtered)
            self._end(msg_id)
            actions.append(Write(message, answer=True))
        elif kind is Kind.BATCH:
            kept: list[Any] = []
            for item in message.body:
                if isinstance(item, dict) and "method" not in item:
                    item_id = item.get("id")
                    if item_id is not None and (self.ids.owns(item_id) or item_id not in self.pending):
                        log.debug("dropping a response for unknown or finished id %r", item_id)
                        continue
                    if item_id is not None:
                        self._end(item_id)
                kept.append(item)
            if kept:
                whole = len(kept) == len(message.body)
                actions.append(Write(message if whole else jsonrpc.from_obj(kept), answer=True))
        else:
            if kind is Kind.NOTIFICATION and message.method == "notifications/progress":
                self.pending.touch_progress(message.params.get("progressToken"), now)
            actions.append(Write(message))

    # ---- failures --------------------------------------------------------------------------------------

    def send_failed(
        self,
        send: Send,
        failure: Failure,
        reason: str,
        *,
        retry_after: float | None = None,
        code: int = jsonrpc.INTERNAL_ERROR,
    ) -> list[Action]:
        actions: list[Action] = []
        entry = self.pending.get(send.request_id) if send.request_id is not None else None
        live = entry is not None and self._send_is_live(send)
        if failure is Failure.SESSION_EXPIRED:
            if entry is not None and live:
                if not entry.resent:
                    # The server never processed it: send it again on the new session.
                    entry.resent = True
                    entry.sent = False
                    self.queue.appendleft(
                        send.message if entry.alias is None else send.message.with_id(entry.id)
                    )
                    entry.alias = None
                else:
                    self._answer_error(entry, f"{reason}, again after re-initializing the session", actions)
            actions.extend(self.session_lost(send.generation, reason))
            return actions
        if failure is Failure.STREAM_LOST and entry is not None and live:
            if entry.modern and entry.method in IDEMPOTENT and send.attempt == 0:
                # A 2026-07-28 stream cannot be resumed: re-issue a request without side effects once,
                # under a new id whose answer is mapped back to the client's.
                alias = self.ids.next()
                self.aliases[alias] = entry.id
                entry.alias = alias
                log.info("re-issuing %s after a broken response stream", entry.method)
                actions.append(Send(send.message.with_id(alias), send.generation, entry.id, 1, ordered=False))
                return actions
        if failure is Failure.BUSY and entry is not None and live:
            if entry.method in IDEMPOTENT and send.attempt < MAX_BUSY_RETRIES:
                delay = min(retry_after if retry_after is not None else 2.0**send.attempt, MAX_RETRY_AFTER)
                log.info("upstream busy; retrying %s in %.1f s", entry.method, delay)
                retry = Send(
                    send.message, send.generation, entry.id, send.attempt + 1, ordered=False, delay=delay
                )
                actions.append(retry)
                return actions
        self._fail_message(send.message, reason, actions, code)
        return actions

    def session_lost(self, generation: int, reason: str) -> list[Action]:
        """The session `generation` ended (stream closed, session expired, keepalive failed)."""
        actions: list[Action] = []
        if generation != self.generation or not self.ready:
            return actions
        self.ready = False
        self.last_error = reason
        actions.append(Report(False, reason))
        waiting = list(self.outbox)
        self.outbox.clear()
        self.unsent(waiting)
        log.warning("upstream session lost (%s); reconnecting", reason)
        if self.loses_in_flight:
            # Legacy responses travel on the lost stream: nothing sent on it will be answered.
            for entry in self.pending.sent_on(generation):
                why = f"the upstream session was lost before the server answered ({reason})"
                self._answer_error(entry, why, actions)
        actions.append(Wake())
        return actions

    # ---- connecting --------------------------------------------------------------------------------------

    def first_attempt(self) -> Message | None:
        """The message detection is tried with (the first live one queued), or None if nothing is left."""
        while self.queue:
            message = self.queue.popleft()
            if self._is_live(message):
                self.generation += 1
                self._mark_sent(message, self.generation)
                return message
        return None

    def reconnect_attempt(self) -> int:
        """A new server session is being opened; its generation."""
        self.generation += 1
        return self.generation

    def connected(
        self,
        first: Message | None,
        first_sent: bool,
        *,
        loses_in_flight: bool,
        cancels_by_notification: bool,
    ) -> list[Action]:
        """An attempt succeeded; `first` (from `first_attempt`) went through detection if `first_sent`."""
        self.loses_in_flight = loses_in_flight
        self.cancels_by_notification = cancels_by_notification
        if first is not None and not first_sent and self._is_live(first):
            self._mark_sent(first, -1, sent=False)
            self.queue.appendleft(first)
        self.failures = 0
        self.connected_once = True
        self.ready = True
        actions: list[Action] = [Report(True, None)]
        while self.queue:
            message = self.queue.popleft()
            if self._is_live(message):
                self._dispatch(message, actions)
        return actions

    def connect_failed(
        self, first: Message | None, reason: str, *, may_come_up: bool, answer: Message | None = None
    ) -> list[Action]:
        """An attempt failed. `may_come_up`: nothing listens yet (the first message waits for the next
        attempt, up to its queue timeout); otherwise it is answered now, with `answer` if the server gave one."""
        actions: list[Action] = []
        self.failures += 1
        self.last_error = reason
        log.warning("cannot reach the upstream (attempt %d): %s", self.failures, reason)
        actions.append(Report(False, reason))
        if first is not None:
            entry = (
                self.pending.get(first.id) if first.kind is Kind.REQUEST and first.id is not None else None
            )
            if answer is not None and entry is not None:
                self._end(entry.id)
                actions.append(Write(answer.with_id(entry.id), answer=True))
            elif may_come_up and first.method not in PROBES:
                if self._is_live(first):
                    self._mark_sent(first, -1, sent=False)
                    self.queue.appendleft(first)
            else:
                self._fail_message(first, reason, actions)
        attempts = self.settings.reconnect_attempts
        if attempts and self.failures >= attempts:
            self.gave_up = f"the upstream is unreachable after {self.failures} attempts: {reason}"
            log.error("giving up on %s: %s", self.settings.upstream, self.gave_up)
            while self.queue:
                self._fail_message(self.queue.popleft(), self.gave_up, actions)
        return actions

    # ---- timers and the end ------------------------------------------------------------------------------

    def timer_fired(self, now: float) -> list[Action]:
        """Answers every request whose time ran out, queued or sent."""
        actions: list[Action] = []
        for entry in self.pending.expired(now):
            if entry.sent:
                reason = f"no response from the server within {self.settings.request_timeout:g} s"
                self._answer_error(entry, reason, actions)
                actions.append(CloseStream(entry.id))
                actions.append(Forget(entry.id))
                if self.ready and not entry.modern:
                    note = {"requestId": entry.id, "reason": "timed out in the proxy"}
                    cancel = jsonrpc.notification("notifications/cancelled", note)
                    actions.append(Send(cancel, self.generation, ordered=False))
            else:
                reason = f"the upstream was not available within {self.settings.queue_timeout:g} s" + (
                    f" ({self.last_error})" if self.last_error else ""
                )
                self._answer_error(entry, reason, actions)
        return actions

    def shut_down(self, reason: str) -> list[Action]:
        """Answer everything still pending; nothing more will be sent."""
        actions: list[Action] = []
        for entry in list(self.pending):
            self._answer_error(entry, reason, actions)
        self.queue.clear()
        self.outbox.clear()
        return actions

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
        self._tool_lists.discard(_key(request_id))
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


def _key(msg_id: JsonId) -> tuple[bool, JsonId]:
    """1 and "1" are different ids."""
    return (isinstance(msg_id, str), msg_id)
