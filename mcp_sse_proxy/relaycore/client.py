"""The relay core's client side: a client message registered, filtered, cancelled, sent or queued."""

from __future__ import annotations

import math
from typing import Any

from ..protocol import messages as jsonrpc
from ..protocol.envforward import inject_env
from ..protocol.messages import InvalidMessage, Kind, Message, id_key
from ..protocol.pending import Pending
from .actions import Action, CloseStream, Forget, Wake, Write
from .state import IN_USE, LASTING, CoreState, log


class ClientSide(CoreState):
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
        if self.gave_up is not None:
            # Nothing sends the queue any more: a notification kept there would stay for good.
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
                self._tool_lists.add(id_key(message.id))
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
        if message.method in LASTING:
            entry.deadline = math.inf  # a subscription lasts as long as the client wants it
            entry.outlives_session = True
        self._armed(entry)
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
                self._armed(self.pending.add(item_id, str(item["method"]), now))
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
