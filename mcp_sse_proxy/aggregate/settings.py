"""The aggregate's timings and limits, what it offers the client, and the error a request is answered with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.model import AGGREGATE_GRACE, Profile
from ..protocol import eras

HANDSHAKE_VERSIONS = eras.HANDSHAKE_VERSIONS
#: What `server/discover` offers: the modern versions, then the handshake ones served through `initialize`.
SUPPORTED_VERSIONS = (*reversed(eras.MODERN_VERSIONS), *reversed(eras.HANDSHAKE_VERSIONS))
#: The list changes the aggregator announces on a client's `subscriptions/listen` (and asks its profiles for).
LISTEN_FILTER = {"toolsListChanged": True, "promptsListChanged": True, "resourcesListChanged": True}
CAPABILITIES: dict[str, Any] = {
    "tools": {"listChanged": True},
    "prompts": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": True},
    "completions": {},
    "logging": {},
}
#: Client requests forwarded to the one profile that owns the name or URI they mention.
ROUTED = frozenset(
    {
        "tools/call",
        "prompts/get",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
    }
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Timings and limits of the aggregate; the defaults suit interactive clients."""

    #: How long `initialize` / `server/discover` (and a first list request, for lazy profiles) waits for
    #: profiles to join.
    grace: float = AGGREGATE_GRACE
    #: Seconds between health checks of a profile that is up: a fallback, as the relay reports a lost
    #: upstream itself when it can tell (a broken SSE stream, a session the server forgot).
    health_interval: float = 15.0
    health_timeout: float = 5.0
    #: Backoff of the aggregator's own attempts (first join; a profile whose relay still calls itself ready).
    retry_initial: float = 0.5
    retry_max: float = 5.0
    #: How long a call to a down profile waits for the immediate reconnection it triggers.
    call_wait: float = 1.5
    initialize_timeout: float = 30.0
    #: Quiet time after a profile's `list_changed` before its list is re-read.
    debounce: float = 0.2
    list_timeout: float = 30.0
    max_pages: int = 1000
    #: Items per page of merged lists; None serves each list as one page.
    page_size: int | None = None
    server_name: str = "mcp-sse-proxy"
    #: Messages waiting for one profile's relay to take them: when it is full the client's input waits
    #: (back-pressure on stdin), for `member_queue_wait` s at most; then the request is answered busy.
    member_queue: int = 64
    member_queue_wait: float = 10.0
    #: Requests of the servers awaiting the client's answer (sampling, elicitation, roots): at most this many,
    #: each for `server_request_ttl` s at most; past either bound the server gets an error answer.
    max_server_requests: int = 256
    server_request_ttl: float = 600.0

    @classmethod
    def from_profile(cls, profile: Profile) -> Settings:
        """What the (first) profile's aggregation options ask for; everything else keeps its default."""
        return cls(grace=profile.aggregate_grace, page_size=profile.page_size or None)


class RequestError(Exception):
    """A client request the aggregator answers with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
