"""What a relay must remember of a client's session to rebuild it on a new upstream session.

A new legacy SSE stream, or a Streamable HTTP session that answered 404, is a fresh server session: the
relay replays the client's `initialize` and `notifications/initialized`, then restores the log level and
resource subscriptions. Pure: it watches messages and says what to replay.
"""

from __future__ import annotations

from typing import Any

from .messages import Message, notification

LIST_CAPABILITIES = {
    "tools": "notifications/tools/list_changed",
    "prompts": "notifications/prompts/list_changed",
    "resources": "notifications/resources/list_changed",
}


class SessionMemory:
    def __init__(self) -> None:
        self.initialize: Message | None = None
        self.initialized: Message | None = None
        self.init_result: dict[str, Any] | None = None
        self.log_level: dict[str, Any] | None = None
        self.subscriptions: dict[str, None] = {}

    @property
    def negotiated_version(self) -> str | None:
        version = (self.init_result or {}).get("protocolVersion")
        return version if isinstance(version, str) else None

    def observe_client(self, message: Message) -> None:
        """Record session-shaping messages the client sends."""
        method = message.method
        if method == "initialize" and message.is_request:
            self.initialize = message
        elif method == "notifications/initialized":
            self.initialized = message
        elif method == "logging/setLevel":
            self.log_level = message.params
        elif method == "resources/subscribe":
            uri = message.params.get("uri")
            if isinstance(uri, str):
                self.subscriptions[uri] = None
        elif method == "resources/unsubscribe":
            uri = message.params.get("uri")
            if isinstance(uri, str):
                self.subscriptions.pop(uri, None)

    def observe_initialize_result(self, response: Message) -> None:
        result = response.body.get("result") if isinstance(response.body, dict) else None
        if isinstance(result, dict):
            self.init_result = result

    def restore_requests(self) -> list[tuple[str, dict[str, Any]]]:
        """(method, params) of the requests that restore state on a new session, after the handshake."""
        plan: list[tuple[str, dict[str, Any]]] = []
        if self.log_level is not None:
            plan.append(("logging/setLevel", self.log_level))
        plan.extend(("resources/subscribe", {"uri": uri}) for uri in self.subscriptions)
        return plan

    def changes_after_replay(self, new_result: dict[str, Any]) -> tuple[list[str], list[Message]]:
        """Warnings about what changed, and the `list_changed` notifications to send the client.

        The lists of a new server session may differ from the old one's whatever the capabilities say, so
        every list the server offers is announced as changed; the client re-reads it.
        """
        warnings: list[str] = []
        old = self.init_result or {}
        if old.get("protocolVersion") != new_result.get("protocolVersion"):
            warnings.append(
                f"protocol version changed from {old.get('protocolVersion')!r} "
                f"to {new_result.get('protocolVersion')!r}"
            )
        old_caps = old.get("capabilities") or {}
        new_caps = new_result.get("capabilities") or {}
        if old_caps != new_caps:
            warnings.append("server capabilities changed")
        notes = [
            notification(method)
            for cap, method in LIST_CAPABILITIES.items()
            if cap in new_caps or cap in old_caps
        ]
        self.init_result = new_result
        return warnings, notes
