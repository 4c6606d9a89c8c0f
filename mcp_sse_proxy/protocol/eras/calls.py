"""The calls a `ModernToHandshake` bridge has in flight, and the server requests it holds for them (MRTR).

A handshake-era server asks the client things (sampling, elicitation, roots) in the middle of a call; a
2026-07-28 client can only be asked through an `input_required` result, and answers by retrying the call
under a new id with `inputResponses` and the `requestState` it was given. `CallBook` keeps, with no I/O:

- each call in flight upstream: its method, the client id now waiting for its answer (the original id, or
  the latest retry's), its `logLevel`, and the server requests held for it, first one shown to the client;
- which call a server request belongs to: the call whose response stream carried it (Streamable HTTP), else
  the oldest live call not already waiting for input (legacy SSE says nothing);
- what a client's cancellation names upstream, also after the call was forgotten.

Events are method calls; the decisions come back as values (`AskClient`, `AnswerServer`, `Stale`) for the
adapter to carry out. Every wait is bounded: a held request the client does not answer within
`hold_limit` seconds (clock from the caller) is refused to the server, which then ends its call.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from ..ids import ProxyIds
from ..messages import INVALID_PARAMS, METHOD_NOT_FOUND, JsonId
from .modern_client import log_level_allows, lowest_log_level
from .spec import LOG_LEVELS, MRTR_METHODS, capability_for_input_request

#: The `inputRequests` key of a held request (one per `input_required`: a new round shows the next).
INPUT_KEY = "input-1"
#: Bound on the client ids remembered after `forget` (only a cancellation can still name them).
MAX_BURIED = 1024


@dataclass(frozen=True, slots=True)
class AskClient:
    """Answer client request `client_id` with an `input_required` asking `method` under `key`."""

    client_id: JsonId
    state: str
    key: str
    method: str
    params: Any


@dataclass(frozen=True, slots=True)
class AnswerServer:
    """Send the server the response to its request `server_request_id` (a result, or an error)."""

    server_request_id: JsonId
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Stale:
    """A retry carries a `requestState` of ours that no longer names a held request (the server session
    ended, the call finished or its hold expired): the retry gets this error, the call is not re-run."""

    message: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The server answered upstream call `upstream_id`: the answer goes to `client_id` (shaped for `method`)."""

    client_id: JsonId
    method: str


@dataclass(slots=True)
class _Held:
    server_request_id: JsonId
    method: str
    params: Any
    state: str | None = None
    since: float = 0.0


@dataclass(slots=True)
class _Call:
    upstream_id: JsonId
    method: str
    #: The client request waiting for this call's next answer; None while a held request is shown.
    answer_to: JsonId | None
    level: str | None
    held: deque[_Held] = field(default_factory=deque)

    @property
    def is_mrtr(self) -> bool:
        return self.method in MRTR_METHODS


class CallBook:
    """Per-call state of one `ModernToHandshake` bridge for one server session (see the module doc)."""

    def __init__(self, ids: ProxyIds, hold_limit: float) -> None:
        self._ids = ids
        self._hold_limit = hold_limit
        #: Upstream id → call, oldest first.
        self._calls: OrderedDict[JsonId, _Call] = OrderedDict()
        #: Client id waiting → upstream id.
        self._waiting: dict[JsonId, JsonId] = {}
        #: `requestState` shown to the client → upstream id of the call holding it.
        self._shown: dict[str, JsonId] = {}
        #: Client ids forgotten whose cancellation names another upstream id (bounded).
        self._buried: OrderedDict[JsonId, JsonId] = OrderedDict()
        self._applied_level: str | None = None

    # ---- client → server -------------------------------------------------------------------------

    def start(self, client_id: JsonId, method: str, level: str | None) -> JsonId:
        """A new call from the client; returns the id to send it upstream under (the client's own unless
        a call still running upstream holds that id, e.g. one answered with `input_required`)."""
        self.forget(client_id)  # a client id is reused only once its old request is over
        self._buried.pop(client_id, None)  # a cancellation naming it now means this call
        upstream_id = client_id if client_id not in self._calls else self._ids.next()
        self._calls[upstream_id] = _Call(
            upstream_id, method, client_id, level if level in LOG_LEVELS else None
        )
        self._waiting[client_id] = upstream_id
        return upstream_id

    def is_ours(self, state: str | None) -> bool:
        """Whether `state` is a `requestState` this book issued (held or no longer)."""
        return self._ids.owns(state)

    def retry(
        self, retry_id: JsonId, state: str, responses: dict[str, Any] | None, now: float
    ) -> list[AskClient | AnswerServer] | Stale:
        """The client's retry answers the held request shown under `state`; the call's answer now goes to
        `retry_id`. Returns the answer for the server, then the next held request if one is queued."""
        upstream_id = self._shown.pop(state, None)
        call = self._calls.get(upstream_id) if upstream_id is not None else None
        if call is None or not call.held or call.held[0].state != state:
            return Stale(
                "this requestState is no longer pending (the server session ended or the call is over)"
            )
        held = call.held.popleft()
        self.forget(retry_id)
        call.answer_to = retry_id
        self._waiting[retry_id] = call.upstream_id
        answer = (responses or {}).get(INPUT_KEY)
        if isinstance(answer, dict):
            actions: list[AskClient | AnswerServer] = [AnswerServer(held.server_request_id, result=answer)]
        else:
            error = {"code": INVALID_PARAMS, "message": "the client gave no answer to this request"}
            actions = [AnswerServer(held.server_request_id, error=error)]
        if call.held:
            actions.append(self._show(call, now))
        return actions

    def forget(self, client_id: JsonId) -> None:
        """The client gave up on `client_id` (cancel, timeout): its call is dropped, so no later server
        request is tied to it and its late answer is not delivered. Unknown ids are ignored."""
        upstream_id = self._waiting.pop(client_id, None)
        if upstream_id is None:
            return
        call = self._calls.pop(upstream_id)
        # Only a call with nobody waiting can hold requests: there is nothing to refuse here.
        assert not call.held
        if upstream_id != client_id:
            self._buried[client_id] = upstream_id
            while len(self._buried) > MAX_BURIED:
                self._buried.popitem(last=False)

    def abandon(self, upstream_id: JsonId) -> None:
        """Sending call `upstream_id` failed or was cancelled: drop it, whatever it was waiting for."""
        call = self._calls.pop(upstream_id, None)
        if call is None:
            return
        if call.answer_to is not None:
            del self._waiting[call.answer_to]
        for held in call.held:
            if held.state is not None:
                self._shown.pop(held.state, None)

    def cancel(self, client_id: JsonId) -> JsonId:
        """The client's `notifications/cancelled` for `client_id` passes: forget the call (if `forget` did
        not already) and return the upstream id the notification must name."""
        if client_id in self._waiting:
            upstream_id = self._waiting.pop(client_id)
            del self._calls[upstream_id]
            return upstream_id
        return self._buried.pop(client_id, client_id)

    # ---- server → client -------------------------------------------------------------------------

    def server_request(
        self, server_request_id: JsonId, method: str, params: Any, stream_call: JsonId | None, now: float
    ) -> AskClient | AnswerServer | None:
        """A server request mid-call. `stream_call`: the upstream id whose response stream carried it, when
        the transport says. Returns what to show the client, a refusal for the server, or None when it
        waits behind a request already shown for the same call."""
        if capability_for_input_request(method) is None:
            return _refusal(server_request_id, f"{method} cannot reach a 2026-07-28 client")
        if stream_call is not None:
            call = self._calls.get(stream_call)
        else:
            call = next((c for c in self._calls.values() if c.is_mrtr and c.answer_to is not None), None)
        if call is None or not call.is_mrtr or (call.answer_to is None and not call.held):
            # No call may ask (or its client already gave up, or its hold expired): the server ends it.
            return _refusal(server_request_id, f"{method} arrived with no call in flight that may ask for it")
        call.held.append(_Held(server_request_id, method, params, since=now))
        if len(call.held) > 1:
            return None
        return self._show(call, now)

    def server_response(self, upstream_id: JsonId) -> Finished | None:
        """The server answered a call: whom the answer goes to, or None to drop it (forgotten, unknown)."""
        call = self._calls.pop(upstream_id, None)
        if call is None:
            return None
        for held in call.held:
            if held.state is not None:
                self._shown.pop(held.state, None)
        if call.answer_to is None:
            return None  # the client was shown input_required and has not retried: its retry is Stale
        del self._waiting[call.answer_to]
        return Finished(call.answer_to, call.method)

    # ---- time, levels, sessions ------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the oldest shown request's hold runs out, if any is shown."""
        times = [c.held[0].since + self._hold_limit for c in self._calls.values() if c.held]
        return min(times) if times else None

    def expire(self, now: float) -> list[AnswerServer]:
        """Refuse every held request of calls whose shown request waited `hold_limit` or longer."""
        refusals: list[AnswerServer] = []
        for call in self._calls.values():
            if call.held and call.held[0].since + self._hold_limit <= now:
                while call.held:
                    held = call.held.popleft()
                    if held.state is not None:
                        self._shown.pop(held.state, None)
                    refusals.append(_refusal(held.server_request_id, "the client did not answer in time"))
        return refusals

    def level_to_apply(self) -> str | None:
        """The process-wide `logging/setLevel` to send now (the lowest any call asked for), if it changed."""
        level = lowest_log_level(c.level for c in self._calls.values())
        if level is None or level == self._applied_level:
            return None
        self._applied_level = level
        return level

    def wants_log(self, level: Any) -> bool:
        """Whether some call in flight asked for log messages at `level`."""
        return any(log_level_allows(level, c.level) for c in self._calls.values() if c.level is not None)

    def reset(self) -> None:
        """A new server session: no call, held request or applied level survives it."""
        self._calls.clear()
        self._waiting.clear()
        self._shown.clear()
        self._buried.clear()
        self._applied_level = None

    # ---- for tests and invariants ----------------------------------------------------------------

    def waiting_clients(self) -> set[JsonId]:
        return set(self._waiting)

    def held_count(self) -> int:
        return sum(len(c.held) for c in self._calls.values())

    def is_empty(self) -> bool:
        return not (self._calls or self._waiting or self._shown or self._buried)

    def check(self) -> None:
        """Assert the book's invariants (for tests)."""
        for client_id, upstream_id in self._waiting.items():
            call = self._calls[upstream_id]
            assert call.answer_to == client_id and not call.held
        for call in self._calls.values():
            if call.held:
                assert call.answer_to is None
            if call.answer_to is not None:
                assert self._waiting[call.answer_to] == call.upstream_id
            for index, held in enumerate(call.held):
                assert (held.state is not None) == (index == 0)
        for state, upstream_id in self._shown.items():
            call = self._calls[upstream_id]
            assert call.held and call.held[0].state == state

    def _show(self, call: _Call, now: float) -> AskClient:
        held = call.held[0]
        held.state = self._ids.next()
        held.since = now
        self._shown[held.state] = call.upstream_id
        client_id = call.answer_to
        assert client_id is not None
        call.answer_to = None
        del self._waiting[client_id]
        return AskClient(client_id, held.state, INPUT_KEY, held.method, held.params)


def _refusal(server_request_id: JsonId, message: str) -> AnswerServer:
    return AnswerServer(server_request_id, error={"code": METHOD_NOT_FOUND, "message": message})
