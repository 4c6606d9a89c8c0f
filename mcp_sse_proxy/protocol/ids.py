"""The proxy's own request-id namespace, kept apart from the client's and the server's ids."""

from __future__ import annotations

import itertools
import secrets

from .messages import JsonId


class ProxyIds:
    """Issues string ids with a per-process random prefix that neither peer will ever produce."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix if prefix is not None else f"mcp-sse-proxy-{secrets.token_hex(4)}-"
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self._counter)}"

    def owns(self, msg_id: JsonId | None) -> bool:
        return isinstance(msg_id, str) and msg_id.startswith(self.prefix)
