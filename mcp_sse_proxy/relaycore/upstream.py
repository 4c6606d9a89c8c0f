"""The relay core's upstream side: server messages routed to the client, and sends that failed."""

from __future__ import annotations

from typing import Any

from ..protocol import messages as jsonrpc
from ..protocol.messages import InvalidMessage, Kind, Message, id_key
from .actions import Action, Resolve, Send, Write
from .events import Failure
from .state import IDEMPOTENT, MAX_BUSY_RETRIES, MAX_RETRY_AFTER, CoreState, log


class UpstreamSide(CoreState):
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
            if id_key(msg_id) in self._tool_lists:
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
            again: Message | None = None
            if entry is not None and live:
                if not entry.resent:
                    # The server never processed it: send it again on the new session.
                    entry.resent = True
                    entry.sent = False
                    self._armed(entry)
                    again = send.message if entry.alias is None else send.message.with_id(entry.id)
                    if entry.alias is not None:
                        self.aliases.pop(entry.alias, None)
                        entry.alias = None
                else:
                    self._answer_error(entry, f"{reason}, again after re-initializing the session", actions)
            elif send.message.kind is Kind.BATCH:
                again = self._batch_expired(send.message, reason, actions)
            actions.extend(self.session_lost(send.generation, reason))
            if again is not None:
                # After what waited in the outbox went back to the queue: it was on the wire before them.
                self.queue.appendleft(again)
            if self.ready:
                # It failed on a session already replaced by a ready one: nothing else sends the queue now.
                self._flush_queue(actions)
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

    def _batch_expired(self, batch: Message, reason: str, actions: list[Action]) -> Message | None:
        """A batch the server never processed (its session expired): what to send once more on the next
        session (None: nothing, or it is answered now)."""
        entries = self._entries_of(batch)
        if not entries:
            return None
        if any(entry.resent for entry in entries):
            for entry in entries:
                self._answer_error(entry, f"{reason}, again after re-initializing the session", actions)
            return None
        for entry in entries:
            entry.resent = True
        live = [
            item
            for item in batch.body
            if not (isinstance(item, dict) and "method" in item and item.get("id") is not None)
            or item["id"] in self.pending
        ]
        again = batch if len(live) == len(batch.body) else jsonrpc.from_obj(live)  # cancelled ones stay out
        self._mark_sent(again, -1, sent=False)
        return again
