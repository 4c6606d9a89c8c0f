"""The relay core's connection life cycle: attempts, sessions lost, timers firing, shutting down."""

from __future__ import annotations

from ..protocol import messages as jsonrpc
from ..protocol.messages import Kind, Message
from .actions import Action, CloseStream, Forget, Report, Send, Wake, Write
from .state import PROBES, CoreState, log


class Lifecycle(CoreState):
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
                if entry.outlives_session:
                    continue  # served by the era bridge, which subscribes again on the next session
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
        self._flush_queue(actions)
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
                # A 2026-07-28 request is cancelled by closing its stream, unless a bridge needs the notification.
                if self.ready and (not entry.modern or self.cancels_by_notification):
                    note = {"requestId": entry.id, "reason": "timed out in the proxy"}
                    cancel = jsonrpc.notification("notifications/cancelled", note)
                    actions.append(Send(cancel, self.generation, ordered=False))
            else:
                reason = f"the upstream was not available within {self.settings.queue_timeout:g} s" + (
                    f" ({self.last_error})" if self.last_error else ""
                )
                self._answer_error(entry, reason, actions)
        self._rescan_deadlines()
        return actions

    def shut_down(self, reason: str) -> list[Action]:
        """Answer everything still pending; nothing more will be sent."""
        actions: list[Action] = []
        for entry in list(self.pending):
            self._answer_error(entry, reason, actions)
        self.queue.clear()
        self.outbox.clear()
        return actions
