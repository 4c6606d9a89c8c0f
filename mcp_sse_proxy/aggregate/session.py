"""The client's session with the aggregate: its era, its envelope, and the methods answered here.

`initialize` (handshake era) or a first valid 2026-07-28 request (modern era) starts the profiles; both
wait, within the grace, for the profiles connecting at start. `ping`, `logging/setLevel` and the merged
lists are answered here too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from .. import __version__
from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.messages import Message
from .catalog import KIND_OF_METHOD
from .member import Member
from .settings import CAPABILITIES, HANDSHAKE_VERSIONS, SUPPORTED_VERSIONS, RequestError, Settings

if TYPE_CHECKING:
    from .announcements import Announcer
    from .supervisor import Supervisor

log = logging.getLogger("mcp_sse_proxy.aggregate")

Handler = Callable[[Message], Awaitable[dict[str, Any]]]


class Session:
    """What the aggregate knows of its client, and the requests it answers without a profile."""

    def __init__(self, members: Sequence[Member], settings: Settings) -> None:
        self._members = members
        self._settings = settings
        self.init_params: dict[str, Any] | None = None
        #: Set once the client's first request picked the era (the supervisors start then).
        self.client_init = anyio.Event()
        self.client_initialized = anyio.Event()
        self.log_level: dict[str, Any] | None = None
        #: "handshake" after `initialize`, "modern" after a valid 2026-07-28 request; None before either.
        self.era: str | None = None
        #: The 2026-07-28 client's envelope (version, capabilities, client info), sent with our own requests.
        self._modern_meta: dict[str, Any] = {}
        #: Until when the first `initialize` / `server/discover` waits for profiles to join.
        self._join_deadline = 0.0
        self._supervisor: Supervisor | None = None
        self._announcer: Announcer | None = None

    def bind(self, supervisor: Supervisor, announcer: Announcer) -> None:
        self._supervisor = supervisor
        self._announcer = announcer

    @property
    def is_modern(self) -> bool:
        return self.era == "modern"

    def handler(self, method: str) -> Handler | None:
        """The local handler of `method`, None if the aggregate does not answer it."""
        if method in KIND_OF_METHOD:
            return self._list
        return {
            "initialize": self._initialize,
            "server/discover": self._discover,
            "ping": self._ping,
            "logging/setLevel": self._set_level,
        }.get(method)

    def server_info(self) -> dict[str, Any]:
        return {"name": self._settings.server_name, "version": __version__}

    def own_params(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """Params of a request of the aggregator's own, with the client's `_meta` in a 2026-07-28 session."""
        if self.era != "modern":
            return params
        meta = self._modern_meta
        return eras.add_modern_meta(
            params,
            meta.get(eras.PROTOCOL_VERSION_KEY, eras.LATEST_MODERN_VERSION),
            meta.get(eras.CLIENT_CAPABILITIES_KEY) or {},
            meta.get(eras.CLIENT_INFO_KEY),
            None,
        )

    def begin_modern(self, message: Message) -> None:
        """A 2026-07-28 client: join every profile with `server/discover` under the client's `_meta`."""
        meta = eras.request_meta(message.params)
        keys = (eras.PROTOCOL_VERSION_KEY, eras.CLIENT_CAPABILITIES_KEY, eras.CLIENT_INFO_KEY)
        self._modern_meta = {key: meta[key] for key in keys if key in meta}
        self.era = "modern"
        self._start_members()
        self.client_initialized.set()  # 2026-07-28 has no `notifications/initialized`

    def _start_members(self) -> None:
        self._join_deadline = anyio.current_time() + self._settings.grace
        for member in self._members:
            member.want(self._join_deadline, connect=not member.profile.lazy)
        self.client_init.set()

    async def _await_joining(self) -> None:
        """Wait (until the join deadline at most) for the profiles connecting at start."""
        with anyio.move_on_after(max(0.0, self._join_deadline - anyio.current_time())):
            for member in self._members:
                if not member.profile.lazy:
                    await member.initialize_done.wait()

    # ---- the methods ------------------------------------------------------------------------------------

    async def _initialize(self, message: Message) -> dict[str, Any]:
        if self.era == "modern":
            raise RequestError(jsonrpc.INVALID_REQUEST, "this session already speaks 2026-07-28")
        if self.init_params is not None:
            raise RequestError(jsonrpc.INVALID_REQUEST, "initialize was already received")
        self.init_params = dict(message.params)
        self.era = "handshake"
        self._start_members()
        await self._await_joining()
        requested = self.init_params.get("protocolVersion")
        version = requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[-1]
        result = self._merged_init_result(version)
        self._log_ready("initialize")
        return result

    async def _discover(self, message: Message) -> dict[str, Any]:
        """`server/discover` (2026-07-28): the merged server, answered within the grace like `initialize`."""
        # A valid modern request has set the era (and started the profiles) by now; one without the
        # `_meta` envelope decides nothing and is answered with what is known.
        await self._await_joining()
        self._log_ready("server/discover")
        merged = self._merged_init_result(HANDSHAKE_VERSIONS[-1])
        # Resource subscriptions travel on listen streams in 2026-07-28, and the aggregate's listen does not
        # offer them (yet): do not promise them.
        merged["capabilities"] = {**CAPABILITIES, "resources": {"listChanged": True}}
        return eras.discover_result_from_initialize(merged, SUPPORTED_VERSIONS)

    async def _ping(self, message: Message) -> dict[str, Any]:
        return {}

    async def _set_level(self, message: Message) -> dict[str, Any]:
        assert self._supervisor is not None
        self.log_level = dict(message.params)
        async with anyio.create_task_group() as tg:
            for member in self._members:
                if member.init_result is not None:
                    tg.start_soon(self._supervisor.quiet_request, member, "logging/setLevel", self.log_level)
        return {}

    async def _list(self, message: Message) -> dict[str, Any]:
        assert message.method is not None and self._supervisor is not None and self._announcer is not None
        await self._supervisor.await_members()
        return self._announcer.page(KIND_OF_METHOD[message.method], message.params.get("cursor"))

    # ---- the merged server ------------------------------------------------------------------------------

    def _merged_init_result(self, version: str) -> dict[str, Any]:
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": CAPABILITIES,
            "serverInfo": self.server_info(),
        }
        instructions = self._instructions()
        if instructions:
            result["instructions"] = instructions
        return result

    def _log_ready(self, what: str) -> None:
        ready = [m.alias for m in self._members if m.init_result is not None]
        log.info(
            "answering %s with %d of %d profiles ready (%s)", what, len(ready), len(self._members), ready
        )

    def _instructions(self) -> str:
        parts = []
        for member in self._members:
            text = (member.init_result or {}).get("instructions")
            if isinstance(text, str) and text.strip():
                parts.append(f"[{member.alias}]\n{text.strip()}")
        return "\n\n".join(parts)
