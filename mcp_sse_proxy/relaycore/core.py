"""`RelayCore`: every decision of one relay, as a pure function of its state, the event and the clock.

Each event is a method (`client_message`, `upstream_message`, `send_failed`, `session_lost`, `connected`,
`connect_failed`, `timer_fired`, `shut_down`, ...) that returns the actions the driver must carry out, in
order. The promise it keeps: every client request gets exactly one answer (the server's, or an error the
core writes), no answer the client did not ask for reaches it, and the proxy's own ids never leave it.

The class is put together from one part per side: `client.ClientSide`, `upstream.UpstreamSide` and
`lifecycle.Lifecycle`, over the shared `state.CoreState`.
"""

from __future__ import annotations

from .client import ClientSide
from .lifecycle import Lifecycle
from .state import IDEMPOTENT, Settings
from .upstream import UpstreamSide

__all__ = ["IDEMPOTENT", "RelayCore", "Settings"]


class RelayCore(ClientSide, UpstreamSide, Lifecycle):
    """The state of one relay between one client and one upstream (see the module docstring)."""
