"""What the relay core asks its driver to do."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.messages import JsonId, Message


@dataclass(frozen=True, slots=True)
class Write:
    """Write `message` to the client; `answer` when it answers one of the client's requests."""

    message: Message
    answer: bool = False


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` upstream on session `generation`, for client request `request_id` (None for other
    messages). `ordered` sends wait their turn in the outbox; the others (responses, cancellations, retries)
    start at once, after `delay` seconds."""

    message: Message
    generation: int
    request_id: JsonId | None = None
    attempt: int = 0
    ordered: bool = True
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Forget:
    """The relay gave up on this request: the upstream drops whatever it keeps for it."""

    request_id: JsonId


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Stop the send in progress for this request (its response stream and concurrency slot are freed)."""

    request_id: JsonId


@dataclass(frozen=True, slots=True)
class Wake:
    """The connector has something to do (a message waits, or a session was lost)."""


@dataclass(frozen=True, slots=True)
class Report:
    """The upstream became ready, or stopped being so (for `on_state` observers)."""

    ready: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class Resolve:
    """A reply to one of the proxy's own requests: hand it to the correlator."""

    message: Message


Action = Write | Send | Forget | CloseStream | Wake | Report | Resolve
