"""The conversation recorder: one debug-log line and one `--trace` JSON record per message, secrets masked.

`Recorder` is a `tap.Tap`. For each message it computes a `Record` (pure: `describe`), writes one line to
the `mcp_sse_proxy.messages` logger at DEBUG and, with a trace file, one JSON object per line. Answers
carry the time since their request crossed the same leg (client or server side), kept in a bounded table.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import IO, Any

from .config.model import AppConfig
from .protocol.messages import LAZY_THRESHOLD, Kind, Message
from .redaction import MASK, Redactor
from .tap import Direction

MESSAGES_LOGGER = "mcp_sse_proxy.messages"
#: Requests remembered for their answer's elapsed time; the oldest is forgotten first.
MAX_OPEN_REQUESTS = 4096

_ANSWERS = {
    Direction.PROXY_TO_CLIENT: Direction.CLIENT_TO_PROXY,
    Direction.CLIENT_TO_PROXY: Direction.PROXY_TO_CLIENT,
    Direction.SERVER_TO_PROXY: Direction.PROXY_TO_SERVER,
    Direction.PROXY_TO_SERVER: Direction.SERVER_TO_PROXY,
}


@dataclass(frozen=True, slots=True)
class Record:
    """What is known of one message once redacted: the summary fields and the (possibly cut) payload."""

    direction: Direction
    profile: str
    kind: str
    id: Any
    method: str | None
    outcome: str | None
    size: int
    elapsed: float | None
    #: The redacted message: a JSON value when whole, else the first bytes as text.
    payload: Any
    truncated: bool

    def summary(self) -> str:
        """The debug-log line: direction, profile, id, method or outcome, size, elapsed time, payload."""
        parts = [self.direction.value, self.profile]
        if self.id is not None:
            parts.append(f"#{self.id}")
        if self.method is not None:
            parts.append(self.method)
        if self.outcome is not None:
            parts.append(self.outcome)
        if self.kind == Kind.BATCH.value:
            parts.append("batch")
        parts.append(_size(self.size))
        if self.elapsed is not None:
            parts.append(f"after {self.elapsed * 1000:.0f} ms")
        if self.truncated:
            text = f"{self.payload}… (cut; {self.size} bytes in all)"
        else:
            text = json.dumps(self.payload, ensure_ascii=False, separators=(",", ":"))
        return " ".join(parts) + ": " + text

    def as_json(self, timestamp: float) -> dict[str, Any]:
        """The trace record."""
        record: dict[str, Any] = {
            "ts": _iso(timestamp),
            "direction": self.direction.name.lower(),
            "profile": self.profile,
            "kind": self.kind,
            "id": self.id,
            "method": self.method,
            "size": self.size,
        }
        if self.outcome is not None:
            record["outcome"] = self.outcome
        if self.elapsed is not None:
            record["elapsed_ms"] = round(self.elapsed * 1000, 3)
        if self.truncated:
            record["truncated"] = True
            record["message_head"] = self.payload
        else:
            record["message"] = self.payload
        return record


class Recorder:
    """A `Tap` writing each message to the messages logger and, if given, to a JSON Lines trace stream."""

    def __init__(
        self,
        secrets: Iterable[str] = (),
        *,
        max_payload: int = 4096,
        trace: IO[str] | None = None,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        values = set(secrets)
        # Inside JSON a secret may appear escaped (quotes, backslashes, non-ASCII): mask those forms too.
        values |= {json.dumps(value)[1:-1] for value in list(values)}
        values |= {json.dumps(value, ensure_ascii=False)[1:-1] for value in list(values)}
        self._redactor = Redactor(values)
        self._longest_secret = max((len(value) for value in values), default=0)
        self.max_payload = max_payload
        self._trace = trace
        self._log = logger or logging.getLogger(MESSAGES_LOGGER)
        self._clock = clock
        self._wall_clock = wall_clock
        self._open: OrderedDict[tuple[str, Direction, Any], float] = OrderedDict()

    def __call__(self, direction: Direction, profile: str, message: Message) -> None:
        wants_log = self._log.isEnabledFor(logging.DEBUG)
        if not wants_log and self._trace is None:
            self._elapsed(direction, profile, message)  # keep the table right for later records
            return
        try:
            record = self.describe(direction, profile, message)
            if wants_log:
                self._log.debug("%s", record.summary())
            if self._trace is not None:
                line = json.dumps(record.as_json(self._wall_clock()), ensure_ascii=False)
                self._trace.write(line + "\n")
                self._trace.flush()
        except Exception:  # a tap never raises into the relay; say once per message what went wrong
            self._log.warning("could not record a %s message", direction.value, exc_info=True)

    def describe(self, direction: Direction, profile: str, message: Message) -> Record:
        """The redacted record of `message` (also updates the open-request table)."""
        elapsed = self._elapsed(direction, profile, message)
        payload, truncated = self._payload(message)
        return Record(
            direction=direction,
            profile=profile,
            kind=message.kind.value,
            id=message.id,
            method=message.method,
            outcome=self._outcome(message),
            size=len(message.raw),
            elapsed=elapsed,
            payload=payload,
            truncated=truncated,
        )

    def _elapsed(self, direction: Direction, profile: str, message: Message) -> float | None:
        if message.id is None:
            return None
        if message.kind is Kind.REQUEST:
            key = (profile, direction, message.id)
            self._open.pop(key, None)
            self._open[key] = self._clock()
            while len(self._open) > MAX_OPEN_REQUESTS:
                self._open.popitem(last=False)
            return None
        if message.kind is Kind.RESPONSE:
            started = self._open.pop((profile, _ANSWERS[direction], message.id), None)
            return None if started is None else max(0.0, self._clock() - started)
        return None

    def _outcome(self, message: Message) -> str | None:
        if message.kind is not Kind.RESPONSE:
            return None
        body = message.body if len(message.raw) <= LAZY_THRESHOLD else None
        return self._redactor.redact(_outcome(message, body))

    def _payload(self, message: Message) -> tuple[Any, bool]:
        """(redacted JSON value, False), or (redacted first `max_payload` bytes as text, True)."""
        raw = message.raw
        if len(raw) <= LAZY_THRESHOLD:
            text = json.dumps(_mask_forwarded_env(message.body), ensure_ascii=False, separators=(",", ":"))
            text = self._redactor.redact(text)
            if len(text.encode()) <= self.max_payload:
                try:
                    return json.loads(text), False
                except ValueError:  # masking cut through JSON syntax: keep the text
                    return text, False
            return _cut(text, self.max_payload), True
        # Too large to decode for a log line: redact a window a secret's length wider than the cut, so a
        # secret straddling the cut is masked whole before the cut is made.
        window = raw[: self.max_payload + self._longest_secret + 64].decode("utf-8", "replace")
        return _cut(self._redactor.redact(window), self.max_payload), True


def open_trace(path: Path) -> IO[str]:
    """The trace file, appended, created with mode 0600 (its directory 0700) like the log files."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return open(fd, "a", encoding="utf-8")


def _mask_forwarded_env(body: Any) -> Any:
    """`tools/call` `arguments.env` values are forwarded environment values: secrets, however short."""
    if not isinstance(body, dict) or body.get("method") != "tools/call":
        return body
    params = body.get("params")
    arguments = params.get("arguments") if isinstance(params, dict) else None
    env = arguments.get("env") if isinstance(arguments, dict) else None
    if not isinstance(env, dict):
        return body
    masked_env = {name: MASK for name in env}
    return {**body, "params": {**params, "arguments": {**arguments, "env": masked_env}}}


def _outcome(message: Message, body: Any) -> str:
    """`result`, or `error CODE "message"` for a response."""
    if not message.is_error:
        return "result"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "error"
    text = error.get("message")
    shown = f" {json.dumps(text, ensure_ascii=False)}" if isinstance(text, str) else ""
    return f"error {error.get('code')}{shown}"


def _cut(text: str, limit: int) -> str:
    data = text.encode()[:limit]
    return data.decode("utf-8", "ignore")


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def _iso(timestamp: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds")


@contextmanager
def recorder_for(config: AppConfig) -> Iterator[Recorder | None]:
    """The recorder `config` asks for (debug log or trace file), or None when nothing would be written."""
    settings = config.logging
    wants_log = settings.debug_enabled or settings.level == "debug"
    if not wants_log and settings.trace_file is None:
        yield None
        return
    trace = open_trace(settings.trace_file.expanduser()) if settings.trace_file is not None else None
    try:
        yield Recorder(config.secrets, max_payload=settings.trace_max_payload, trace=trace)
    finally:
        if trace is not None:
            trace.close()
