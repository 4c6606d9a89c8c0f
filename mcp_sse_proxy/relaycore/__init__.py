"""The relay's state as a pure state machine (in the spirit of h11): typed events in, typed actions out.

`RelayCore` holds everything that outlives one HTTP exchange (the client requests awaiting answers, the
queue waiting for the upstream, the outbox, generations, aliases of re-issued requests) and decides what
happens on each event; `relay.Relay` is the anyio driver that moves bytes and runs timers. No I/O here.
"""

from .actions import Action, CloseStream, Forget, Report, Resolve, Send, Wake, Write
from .core import RelayCore, Settings
from .events import Failure

__all__ = [
    "Action",
    "CloseStream",
    "Failure",
    "Forget",
    "RelayCore",
    "Report",
    "Resolve",
    "Send",
    "Settings",
    "Wake",
    "Write",
]
