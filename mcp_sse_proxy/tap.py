"""The contract between the relay and whoever records the conversation (debug log, `--trace`).

Every JSON-RPC message that crosses one of the proxy's four edges may be told to a `Tap`: the client's
messages as read, what goes to a server, what a server sends, and what the client is given. The relay and
the stdio edge call a tap only when one is configured (`None` otherwise), so an untraced run pays nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from .protocol.messages import Message


class Direction(enum.Enum):
    CLIENT_TO_PROXY = "client→proxy"
    PROXY_TO_SERVER = "proxy→server"
    SERVER_TO_PROXY = "server→proxy"
    PROXY_TO_CLIENT = "proxy→client"


#: `tap(direction, profile_name, message)`: cheap, synchronous, and never raises.
Tap = Callable[[Direction, str, Message], None]
