"""A fault-injecting MCP server for what real servers won't do on demand.

It speaks legacy HTTP+SSE (`GET /sse`, messages POSTed to the endpoint it announces) and handshake-era Streamable
HTTP (`POST`/`GET`/`DELETE /mcp`, `Mcp-Session-Id`, JSON or SSE answers) with a small real MCP core: `initialize`,
`notifications/initialized`, `ping`, `tools/list`, `tools/call` (`echo`, `slow`, `log`, `sample`), `logging/setLevel`,
`resources/list`, `resources/subscribe`/`unsubscribe`, `notifications/cancelled`. `server/discover` gets -32601:
it is a legacy-only server.

Control API (JSON over HTTP on the same port; never logged):
- `POST /_control` with a JSON object of switches (see `Faults`) merges them into the current faults and returns
  them; `{"reset": true}` first restores the defaults and clears the request log.
- `GET /_control/log` returns `{"requests": [...]}`: every request received (`seq`, `method`, `path`, `query`,
  `headers` with lowercase names, `body` parsed as JSON when it is JSON, `status` answered, `at` and `ended`:
  the server's monotonic clock when the request arrived and when its answer ended).
- `POST /_control/restart` drops all sessions and streams, as if the process restarted.
- `POST /_control/send` with `{"message": {...}, "session": id?}` pushes a raw JSON-RPC message to the client:
  on the legacy SSE stream, or on the Streamable standalone GET stream (buffered until one is open).
- `GET /_control/state` returns the live sessions with their log level, subscriptions and cancelled request ids.
- `GET /_control/changes?since=N&wait=S` answers `{"version": V}` once the server's change counter V (bumped
  as each request arrives and as it is answered) exceeds N, or after S seconds: tests wait on it, not on sleeps.

Run it as `python -m tests.servers.fault_server [--port 0] [--certfile PEM --keyfile KEY]` (prints `READY <port>`;
https with a certificate), or in-process with `async with running_fault_server() as (server, base_url): ...`.

Why one module of about 1,000 lines: it is a test peer, not product code, and every fault switch cuts across
both transports and the SSE encoder; split, each fault would be spread over three files a test author reads.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.abc
from starlette.types import Message, Receive, Scope, Send

from tests.servers.serving import bind_loopback, build_server, serve_forever, server_arguments

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
LATEST_VERSION = HANDSHAKE_VERSIONS[-1]
SERVER_INFO = {"name": "fault-server", "version": "1.0.0"}
LINE_ENDINGS = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}
ENDPOINT_MODES = ("path", "relative", "path_query", "absolute", "cross_origin")
TOOLS = [
    {
        "name": "echo",
        "description": "Return the text unchanged.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    },
    {
        "name": "slow",
        "description": "Sleep `seconds`, sending progress after each of `steps` steps when asked.",
        "inputSchema": {
            "type": "object",
            "properties": {"seconds": {"type": "number"}, "steps": {"type": "integer"}},
        },
    },
    {
        "name": "log",
        "description": "Send notifications/message at `level` (when the session's level allows it).",
        "inputSchema": {
            "type": "object",
            "properties": {"level": {"type": "string"}, "message": {"type": "string"}},
            "required": ["message"],
        },
    },
    {
        "name": "sample",
        "description": "Ask the client for sampling/createMessage and return the reply text.",
        "inputSchema": {
            "type": "object",
            "properties": {"prompt": {"type": "string"}},
            "required": ["prompt"],
        },
    },
]
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")

logger = logging.getLogger("fault_server")


class DeliberateCut(Exception):
    """Raised to make uvicorn drop a connection without finishing the response (a network cut)."""


class _HideDeliberateCuts(logging.Filter):
    """Keep uvicorn's error log quiet about cuts we asked for."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DeliberateCut)


@dataclass
class Faults:
    """Every fault switch, with its JSON name and default. Counted switches are objects with a `count`
    (default 1; -1 for "every time") and are removed once used up.

    SSE formatting (all SSE streams, legacy and Streamable):
    - `sse_line_ending`: "lf" | "crlf" | "cr".
    - `sse_chunk_size`: split every SSE write into chunks of this many bytes; `sse_chunk_delay` seconds apart.
    - `sse_multiline_data`: pretty-print the JSON, one `data:` line per JSON line.
    - `sse_comments`: add `: comment` lines around the fields of every event.
    - `sse_retry_ms`: add a `retry:` field to every event.
    - `sse_keepalive_ms`: write a `: keepalive` comment line whenever a stream has been idle this long.
    Legacy HTTP+SSE:
    - `endpoint`: how the `endpoint` event names the POST URL: "path" (`/messages/?sessionId=…`), "relative"
      (`messages/?sessionId=…`, no leading slash), "path_query" (leading slash, extra query parameters),
      "absolute" (full URL, same origin), "cross_origin" (full URL on `localhost` vs `127.0.0.1`: same server,
      other origin, so a POST that arrives there proves the client did not refuse it).
    Streamable HTTP:
    - `json_response`: answer requests with `application/json` instead of an SSE stream.
    - `json_pretty`: pretty-print JSON bodies (embedded newlines).
    - `session_ids`: issue `Mcp-Session-Id` on `initialize` (and require it afterwards).
    - `get_stream`: offer the standalone GET stream (false: 405). `delete_allowed`: false answers DELETE with 405.
    - `resumable`: put ids on POST/GET stream events and replay missed ones on GET with `Last-Event-ID`.
    - `priming`: open each POST stream with a priming event (an id, empty data); implies ids.
    - `strict_protocol_version`: answer 400 to post-initialize requests without the negotiated
      `MCP-Protocol-Version` header.
    - `initialize_version`: the protocolVersion `initialize` answers with (default: the client's if known).
    Counted faults (objects):
    - `redirect`: `{"to": "http://127.0.0.1:PORT", "status": 307, "http_method": "POST"|null, "rpc_method": str|null,
      "count": 1}`: answer a matching request with that redirect status and `Location: <to><path>?<query>` (the
      request's own path and query on another base URL), instead of serving it.
    - `http_error`: `{"status": 500|404|429|401|..., "http_method": "POST"|"GET"|"DELETE"|null,
      "rpc_method": str|null, "retry_after": "1", "www_authenticate": str, "body": str|object, "count": 1}`:
      answer a matching request with this status instead of serving it (429 gets `Retry-After`, 401 gets
      `WWW-Authenticate`, both with defaults).
    - `post_delay`: `{"seconds": 1.0, "rpc_method": str|null, "count": 1}`: wait before answering a POST.
    - `invalid_json`: `{"count": 1}`: emit an extra `message` event with invalid JSON before the next real one.
    - `cut_mid_event`: `{"count": 1}`: write half of the next `message` event, then drop the connection.
    - `drop_post_stream`: `{"after_events": 1, "rpc_method": str|null, "retry_ms": int|null, "count": 1}`: end a
      matching request's POST SSE stream after that many message events (the request keeps running; with ids
      the rest is replayed on GET with `Last-Event-ID`). With `retry_ms`, the priming event carries `retry:` and
      `after_events: 0` closes right after it (2025-11-25 polling).
    """

    sse_line_ending: str = "lf"
    sse_chunk_size: int | None = None
    sse_chunk_delay: float = 0.0
    sse_multiline_data: bool = False
    sse_comments: bool = False
    sse_retry_ms: int | None = None
    sse_keepalive_ms: int | None = None
    endpoint: str = "path"
    json_response: bool = False
    json_pretty: bool = False
    session_ids: bool = True
    get_stream: bool = True
    delete_allowed: bool = True
    resumable: bool = False
    priming: bool = False
    strict_protocol_version: bool = False
    initialize_version: str | None = None
    http_error: dict[str, Any] | None = None
    post_delay: dict[str, Any] | None = None
    invalid_json: dict[str, Any] | None = None
    cut_mid_event: dict[str, Any] | None = None
    drop_post_stream: dict[str, Any] | None = None
    redirect: dict[str, Any] | None = None

    def update(self, changes: dict[str, Any]) -> None:
        """Merge `changes` into the switches; raise ValueError naming an unknown switch or bad value."""
        known = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault switch {key!r}; known: {sorted(known)}")
            setattr(self, key, value)
        if self.sse_line_ending not in LINE_ENDINGS:
            raise ValueError(f"sse_line_ending must be one of {sorted(LINE_ENDINGS)}")
        if self.endpoint not in ENDPOINT_MODES:
            raise ValueError(f"endpoint must be one of {ENDPOINT_MODES}")

    def take(
        self, name: str, *, rpc_method: str | None = None, http_method: str | None = None
    ) -> dict[str, Any] | None:
        """Use one count of the counted fault `name` if it matches this request, else None."""
        fault = getattr(self, name)
        if not fault:
            return None
        if fault.get("rpc_method") is not None and fault["rpc_method"] != rpc_method:
            return None
        if (
            fault.get("http_method") is not None
            and http_method is not None
            and fault["http_method"] != http_method
        ):
            return None
        count = fault.get("count", 1)
        if count != -1:
            if count <= 1:
                setattr(self, name, None)
            else:
                fault["count"] = count - 1
        return fault

    @property
    def has_ids(self) -> bool:
        return self.resumable or self.priming


@dataclass
class SseEvent:
    data: str
    event: str | None = "message"
    event_id: str | None = None
    retry: int | None = None


def encode_event(event: SseEvent, faults: Faults) -> bytes:
    """Serialize one SSE event with the current formatting faults."""
    newline = LINE_ENDINGS[faults.sse_line_ending]
    lines: list[str] = []
    if faults.sse_comments:
        lines.append(": fault-server comment")
    if event.event is not None:
        lines.append(f"event: {event.event}")
    if event.event_id is not None:
        lines.append(f"id: {event.event_id}")
    retry = event.retry if event.retry is not None else faults.sse_retry_ms
    if retry is not None:
        lines.append(f"retry: {retry}")
    if faults.sse_comments:
        lines.append(":")
    lines.extend(f"data: {part}" for part in event.data.split("\n"))
    return (newline.join(lines) + newline + newline).encode()


def dump_json(message: Any, pretty: bool) -> str:
    return json.dumps(message, indent=2) if pretty else json.dumps(message, separators=(",", ":"))


class StreamLog:
    """The ordered events of one SSE stream, kept so a writer can follow it live and a resumer can replay it."""

    def __init__(self, key: str, with_ids: bool) -> None:
        self.key = key
        self.with_ids = with_ids
        self.events: list[SseEvent] = []
        self.finished = False
        self.aborted = False
        self._changed = anyio.Event()

    def append(self, data: str, retry: int | None = None) -> None:
        event_id = f"{self.key}.{len(self.events)}" if self.with_ids else None
        self.events.append(SseEvent(data=data, event_id=event_id, retry=retry))
        self._wake()

    def finish(self) -> None:
        self.finished = True
        self._wake()

    def abort(self) -> None:
        self.aborted = True
        self._wake()

    def index_after(self, event_id: str) -> int | None:
        for index, event in enumerate(self.events):
            if event.event_id == event_id:
                return index + 1
        return None

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


@dataclass
class Session:
    """One MCP session: a legacy SSE connection or a Streamable `Mcp-Session-Id`."""

    session_id: str
    transport: str
    outbox: StreamLog
    initialized: bool = False
    protocol_version: str | None = None
    log_level: str = "debug"
    subscriptions: set[str] = field(default_factory=set)
    cancelled: list[Any] = field(default_factory=list)
    in_flight: dict[Any, anyio.CancelScope] = field(default_factory=dict)
    pending_server_requests: dict[Any, tuple[anyio.Event, list[dict[str, Any]]]] = field(default_factory=dict)
    post_streams: dict[str, StreamLog] = field(default_factory=dict)
    get_stream_open: bool = False
    get_delivered: int = 0
    server_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def close(self) -> None:
        self.outbox.abort()
        for log in self.post_streams.values():
            log.abort()
        for scope in self.in_flight.values():
            scope.cancel()


Emit = Callable[[dict[str, Any]], None]


class _HttpExchange:
    """The ASGI plumbing of one HTTP request: body, responses, streaming, disconnect."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query = scope.get("query_string", b"").decode("latin-1")
        self.status: int | None = None

    async def body(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def start(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await self.send({"type": "http.response.start", "status": status, "headers": raw})

    async def chunk(self, data: bytes, more: bool = True) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(
        self, status: int, body: bytes | str = b"", headers: dict[str, str] | None = None
    ) -> None:
        payload = body.encode() if isinstance(body, str) else body
        all_headers = {"content-length": str(len(payload))}
        all_headers.update(headers or {})
        await self.start(status, all_headers)
        await self.chunk(payload, more=False)

    async def respond_json(
        self, status: int, body: Any, headers: dict[str, str] | None = None, pretty: bool = False
    ):
        await self.respond(
            status, dump_json(body, pretty), {"content-type": "application/json", **(headers or {})}
        )

    async def wait_disconnect(self) -> None:
        while True:
            message: Message = await self.receive()
            if message["type"] == "http.disconnect":
                return


def _rpc_error(message_id: Any, code: int, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": code, "message": text}}


def _rpc_result(message_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "result": result}


def _rpc_method(body: Any) -> str | None:
    return body.get("method") if isinstance(body, dict) else None


class FaultServer:
    """The ASGI app. `faults` and `requests` may be changed and read directly when it runs in-process."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.requests: list[dict[str, Any]] = []
        self.sessions: dict[str, Session] = {}
        self._seq = itertools.count(1)
        self._task_group: anyio.abc.TaskGroup | None = None
        self._version = 0
        self._changed: anyio.Event | None = None  # made in the event loop, at the first wait

    def _bump(self) -> None:
        self._version += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _changes(self, query: str) -> dict[str, int]:
        params = parse_qs(query)
        since = int((params.get("since") or ["-1"])[0])
        wait = min(float((params.get("wait") or ["5"])[0]), 30.0)
        with anyio.move_on_after(wait):
            while self._version <= since:
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()
        return {"version": self._version}

    async def wait_for_log(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float) -> None:
        """For a server run in the test's own process: wait until `predicate(requests)` holds, woken by each
        change to the log (no polling)."""
        with anyio.fail_after(timeout):
            while not predicate(self.requests):
                if self._changed is None:
                    self._changed = anyio.Event()
                await self._changed.wait()

    # ---- control ---------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Default faults, empty request log, no sessions."""
        self.faults = Faults()
        self.requests.clear()
        self.restart()

    def restart(self) -> None:
        """Drop every session and stream, as a restarted server would."""
        for session in list(self.sessions.values()):
            session.close()
        self.sessions.clear()

    def send_to_client(self, message: dict[str, Any], session_id: str | None = None) -> int:
        """Queue a raw server message on the legacy stream or Streamable GET stream of one or all sessions."""
        targets = [self.sessions[session_id]] if session_id in self.sessions else list(self.sessions.values())
        for session in targets:
            session.outbox.append(dump_json(message, self.faults.sse_multiline_data))
        return len(targets)

    def state(self) -> dict[str, Any]:
        return {
            "sessions": [
                {
                    "session_id": s.session_id,
                    "transport": s.transport,
                    "initialized": s.initialized,
                    "protocol_version": s.protocol_version,
                    "log_level": s.log_level,
                    "subscriptions": sorted(s.subscriptions),
                    "cancelled": s.cancelled,
                    "get_stream_open": s.get_stream_open,
                }
                for s in self.sessions.values()
            ]
        }

    async def _control(self, http: _HttpExchange) -> None:
        raw = await http.body()
        try:
            payload = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            await http.respond_json(400, {"error": f"invalid JSON: {exc}"})
            return
        route = (http.method, http.path.rstrip("/"))
        if route == ("GET", "/_control/log"):
            await http.respond_json(200, {"requests": self.requests})
        elif route == ("GET", "/_control/changes"):
            await http.respond_json(200, await self._changes(http.query))
        elif route == ("GET", "/_control/state"):
            await http.respond_json(200, self.state())
        elif route == ("POST", "/_control/restart"):
            self.restart()
            await http.respond_json(200, {"restarted": True})
        elif route == ("POST", "/_control/reset"):
            self.reset()
            await http.respond_json(200, asdict(self.faults))
        elif route == ("POST", "/_control/send"):
            delivered = self.send_to_client(payload["message"], payload.get("session"))
            await http.respond_json(200, {"delivered": delivered})
        elif route == ("POST", "/_control"):
            if payload.pop("reset", False):
                self.reset()
            try:
                self.faults.update(payload)
            except ValueError as exc:
                await http.respond_json(400, {"error": str(exc)})
                return
            await http.respond_json(200, asdict(self.faults))
        elif route == ("GET", "/_control"):
            await http.respond_json(200, asdict(self.faults))
        else:
            await http.respond_json(404, {"error": f"no control route {http.method} {http.path}"})

    # ---- ASGI entry ------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        http = _HttpExchange(scope, receive, send)
        if http.path.startswith("/_control"):
            await self._control(http)
            return
        entry: dict[str, Any] = {
            "seq": next(self._seq),
            "method": http.method,
            "path": http.path,
            "query": http.query,
            "headers": http.headers,
            "body": None,
            "status": None,
            # The server's own clock (seconds, monotonic): when the request arrived and when its answer ended,
            # so a test can assert how long the proxy waited between two requests without timing it itself.
            "at": anyio.current_time(),
            "ended": None,
        }
        self.requests.append(entry)
        self._bump()
        try:
            await self._route(http, entry)
        finally:
            entry["status"] = http.status
            entry["ended"] = anyio.current_time()
            self._bump()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            await receive()  # lifespan.startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            self.restart()
            task_group.cancel_scope.cancel()
        self._task_group = None
        await send({"type": "lifespan.shutdown.complete"})

    def _spawn(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._task_group is None:
            raise RuntimeError(
                "the fault server needs ASGI lifespan support (uvicorn lifespan='on' or 'auto')"
            )
        self._task_group.start_soon(func, *args)

    async def _route(self, http: _HttpExchange, entry: dict[str, Any]) -> None:
        body_bytes = await http.body() if http.method in ("POST", "PUT", "PATCH") else b""
        body: Any = None
        if body_bytes:
            try:
                body = json.loads(body_bytes)
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = body_bytes.decode("utf-8", "replace")
        entry["body"] = body
        if await self._injected_redirect(http, body) or await self._injected_error(http, body):
            return
        if http.method == "POST" and (delay := self.faults.take("post_delay", rpc_method=_rpc_method(body))):
            await anyio.sleep(float(delay.get("seconds", 1.0)))
        path = http.path
        if path.rstrip("/") == "/sse" and http.method == "GET":
            await self._legacy_stream(http)
        elif path.rstrip("/").endswith("messages") and http.method == "POST":
            await self._legacy_post(http, body)
        elif path.rstrip("/") in ("/sse", "/messages"):
            await http.respond(405, "method not allowed")
        elif path.rstrip("/") == "/mcp":
            await self._streamable(http, body)
        else:
            await http.respond(404, "not found")

    async def _injected_redirect(self, http: _HttpExchange, body: Any) -> bool:
        fault = self.faults.take("redirect", rpc_method=_rpc_method(body), http_method=http.method)
        if fault is None:
            return False
        location = str(fault["to"]).rstrip("/") + http.path + (f"?{http.query}" if http.query else "")
        await http.respond(int(fault.get("status", 307)), b"", {"location": location})
        return True

    async def _injected_error(self, http: _HttpExchange, body: Any) -> bool:
        fault = self.faults.take("http_error", rpc_method=_rpc_method(body), http_method=http.method)
        if fault is None:
            return False
        status = int(fault.get("status", 500))
        headers: dict[str, str] = dict(fault.get("headers", {}))
        if status == 429:
            headers.setdefault("retry-after", str(fault.get("retry_after", "1")))
        if status == 401:
            headers.setdefault(
                "www-authenticate", fault.get("www_authenticate", 'Bearer realm="fault-server"')
            )
        payload = fault.get("body", f"injected {status}")
        if isinstance(payload, str):
            await http.respond(status, payload, {"content-type": "text/plain", **headers})
        else:
            await http.respond_json(status, payload, headers)
        return True

    # ---- SSE writing -----------------------------------------------------------------------------------------

    async def _write(self, http: _HttpExchange, data: bytes) -> None:
        size = self.faults.sse_chunk_size
        if not size:
            await http.chunk(data)
            return
        for start in range(0, len(data), size):
            await http.chunk(data[start : start + size])
            if self.faults.sse_chunk_delay:
                await anyio.sleep(self.faults.sse_chunk_delay)

    async def _write_event(self, http: _HttpExchange, event: SseEvent) -> bool:
        """Write one event with the faults that apply to it; False when the connection must be cut."""
        is_message = event.event == "message" and event.data != ""
        if is_message and self.faults.take("invalid_json"):
            await self._write(http, encode_event(SseEvent(data='{"jsonrpc": "2.0", "id": oops'), self.faults))
        encoded = encode_event(event, self.faults)
        if is_message and self.faults.take("cut_mid_event"):
            await self._write(http, encoded[: len(encoded) // 2])
            return False
        await self._write(http, encoded)
        return True

    async def _follow(
        self, http: _HttpExchange, log: StreamLog, start: int, stop_after: int | None = None
    ) -> str:
        """Write `log` from `start` as it grows. Returns "finished", "aborted", "dropped" or "cut"."""
        index = start
        written = 0
        while True:
            while index < len(log.events):
                if log.aborted:
                    return "aborted"
                event = log.events[index]
                if event.data and stop_after is not None and written >= stop_after:
                    return "dropped"  # priming events (no data) still go out before the drop
                index += 1
                if not await self._write_event(http, event):
                    return "cut"
                if event.data:
                    written += 1
            if log.aborted:
                return "aborted"
            if log.finished:
                return "finished"
            if stop_after is not None and written >= stop_after:
                return "dropped"  # everything so far is out: close now rather than wait for more
            await self._wait_or_keepalive(http, log)

    async def _wait_or_keepalive(self, http: _HttpExchange, log: StreamLog) -> None:
        keepalive_ms = self.faults.sse_keepalive_ms
        if not keepalive_ms:
            await log.wait_changed()
            return
        with anyio.move_on_after(keepalive_ms / 1000) as idle:
            await log.wait_changed()
        if idle.cancelled_caught:
            await self._write(http, (": keepalive" + LINE_ENDINGS[self.faults.sse_line_ending]).encode())

    async def _stream(
        self,
        http: _HttpExchange,
        log: StreamLog,
        start: int,
        headers: dict[str, str],
        stop_after: int | None = None,
    ) -> str:
        """Answer with an SSE stream that follows `log`, ending early if the client goes away."""
        await http.start(200, {"content-type": "text/event-stream", "cache-control": "no-cache", **headers})
        outcome = "disconnected"
        async with anyio.create_task_group() as task_group:

            async def watch() -> None:
                await http.wait_disconnect()
                task_group.cancel_scope.cancel()

            task_group.start_soon(watch)
            outcome = await self._follow(http, log, start, stop_after)
            task_group.cancel_scope.cancel()
        if outcome == "cut":
            raise DeliberateCut(f"cut {http.method} {http.path} mid-event")
        if outcome != "disconnected":
            await http.chunk(b"", more=False)
        return outcome

    # ---- legacy HTTP+SSE -------------------------------------------------------------------------------------

    def _endpoint_for(self, http: _HttpExchange, session_id: str) -> str:
        host = http.headers.get("host", "127.0.0.1")
        port = host.rsplit(":", 1)[1] if ":" in host else "80"
        mode = self.faults.endpoint
        if mode == "relative":
            return f"messages/?sessionId={session_id}"
        if mode == "path_query":
            return f"/messages/?sessionId={session_id}&tenant=a%20b&x=1"
        if mode == "absolute":
            return f"http://{host}/messages/?sessionId={session_id}"
        if mode == "cross_origin":
            other = "localhost" if not host.startswith("localhost") else "127.0.0.1"
            return f"http://{other}:{port}/messages/?sessionId={session_id}"
        return f"/messages/?sessionId={session_id}"

    async def _legacy_stream(self, http: _HttpExchange) -> None:
        session_id = uuid.uuid4().hex
        outbox = StreamLog(session_id, with_ids=False)
        session = Session(session_id=session_id, transport="sse", outbox=outbox)
        self.sessions[session_id] = session
        outbox.events.append(SseEvent(data=self._endpoint_for(http, session_id), event="endpoint"))
        try:
            await self._stream(http, outbox, 0, {})
        finally:
            if self.sessions.get(session_id) is session:
                del self.sessions[session_id]
                session.close()

    async def _legacy_post(self, http: _HttpExchange, body: Any) -> None:
        session_id = (parse_qs(http.query).get("sessionId") or [None])[0]
        if session_id is None:
            await http.respond(400, "sessionId is required")
            return
        session = self.sessions.get(session_id)
        if session is None or session.transport != "sse":
            await http.respond(404, "Could not find session")
            return
        if not isinstance(body, dict):
            await http.respond(400, "expected one JSON-RPC message")
            return
        await http.respond(202, "Accepted")
        emit = self._emitter(session.outbox)
        self._spawn(self._process, session, body, emit)

    # ---- Streamable HTTP -------------------------------------------------------------------------------------

    async def _streamable(self, http: _HttpExchange, body: Any) -> None:
        if http.method == "POST":
            await self._streamable_post(http, body)
        elif http.method == "GET":
            await self._streamable_get(http)
        elif http.method == "DELETE":
            await self._streamable_delete(http)
        else:
            await http.respond(405, headers={"allow": "GET, POST, DELETE"})

    def _session_of(self, http: _HttpExchange) -> tuple[Session | None, int | None]:
        """The request's session, or the status that refuses it (400 missing id, 404 unknown id)."""
        if not self.faults.session_ids:
            return self.sessions.get("stateless"), None
        session_id = http.headers.get("mcp-session-id")
        if session_id is None:
            return None, 400
        session = self.sessions.get(session_id)
        if session is None or session.transport != "streamable":
            return None, 404
        return session, None

    async def _streamable_post(self, http: _HttpExchange, body: Any) -> None:
        pretty = self.faults.json_pretty
        if not isinstance(body, dict):
            code, text = (
                (-32700, "Parse error") if isinstance(body, str) else (-32600, "batches are not supported")
            )
            await http.respond_json(400, _rpc_error(None, code, text), pretty=pretty)
            return
        method = body.get("method")
        headers: dict[str, str] = {}
        if method == "initialize":
            session_id = uuid.uuid4().hex if self.faults.session_ids else "stateless"
            if session_id in self.sessions:
                self.sessions.pop(session_id).close()
            outbox = StreamLog(f"{session_id}-get", with_ids=self.faults.has_ids)
            session = Session(session_id=session_id, transport="streamable", outbox=outbox)
            self.sessions[session_id] = session
            if self.faults.session_ids:
                headers["mcp-session-id"] = session_id
        else:
            found, refusal = self._session_of(http)
            if found is None:
                status = refusal or 400
                text = "Session not found" if status == 404 else "Bad Request: missing session id"
                await http.respond_json(status, _rpc_error(body.get("id"), -32600, text), pretty=pretty)
                return
            session = found
            if self.faults.session_ids:
                headers["mcp-session-id"] = session.session_id
            if self.faults.strict_protocol_version and http.headers.get("mcp-protocol-version") != (
                session.protocol_version
            ):
                await http.respond_json(
                    400,
                    _rpc_error(body.get("id"), -32600, "Bad Request: MCP-Protocol-Version"),
                    pretty=pretty,
                )
                return
        if "id" not in body or method is None:
            # A notification or a response: nothing to send back on this POST.
            await http.respond(202, headers=headers)
            self._spawn(self._process, session, body, self._emitter(session.outbox))
            return
        if self.faults.json_response:
            answers: list[dict[str, Any]] = []
            standalone = self._emitter(session.outbox)

            def collect(message: dict[str, Any]) -> None:
                # A JSON answer holds only the response: server requests move to the GET stream,
                # notifications are dropped.
                if "method" not in message:
                    answers.append(message)
                elif "id" in message:
                    standalone(message)

            await self._process(session, body, collect)
            reply = answers[-1] if answers else _rpc_error(body["id"], -32603, "no response")
            await http.respond_json(200, reply, headers, pretty=pretty)
            return
        await self._post_stream(http, session, body, headers)

    async def _post_stream(
        self, http: _HttpExchange, session: Session, body: dict[str, Any], headers: dict[str, str]
    ) -> None:
        drop = self.faults.take("drop_post_stream", rpc_method=body.get("method"))
        retry_ms = drop.get("retry_ms") if drop else None
        key = uuid.uuid4().hex[:12]
        log = StreamLog(key, with_ids=self.faults.has_ids or retry_ms is not None)
        session.post_streams[key] = log
        if self.faults.priming or retry_ms is not None:
            log.append("", retry=retry_ms)
        emit = self._emitter(log)

        async def run() -> None:
            try:
                await self._process(session, body, emit)
            finally:
                log.finish()

        self._spawn(run)
        stop_after = int(drop.get("after_events", 1)) if drop else None
        await self._stream(http, log, 0, headers, stop_after)

    async def _streamable_get(self, http: _HttpExchange) -> None:
        session, refusal = self._session_of(http)
        if session is None:
            await http.respond(refusal or 400, "Session not found" if refusal == 404 else "Bad Request")
            return
        headers = {"mcp-session-id": session.session_id} if self.faults.session_ids else {}
        last_event_id = http.headers.get("last-event-id")
        if last_event_id is not None:
            for log in (*session.post_streams.values(), session.outbox):
                start = log.index_after(last_event_id)
                if start is not None:
                    await self._stream(http, log, start, headers)
                    return
            await http.respond(400, "unknown Last-Event-ID")
            return
        if not self.faults.get_stream:
            await http.respond(405, "no standalone SSE stream", {"allow": "POST, DELETE"})
            return
        if session.get_stream_open:
            await http.respond(409, "a GET stream is already open")
            return
        session.get_stream_open = True
        try:
            await self._stream(http, session.outbox, session.get_delivered, headers)
        finally:
            session.get_stream_open = False
            session.get_delivered = len(session.outbox.events)

    async def _streamable_delete(self, http: _HttpExchange) -> None:
        if not self.faults.delete_allowed:
            await http.respond(405, "session termination is not supported", {"allow": "GET, POST"})
            return
        session, refusal = self._session_of(http)
        if session is None:
            await http.respond(refusal or 400)
            return
        del self.sessions[session.session_id]
        session.close()
        await http.respond(200)

    # ---- MCP core --------------------------------------------------------------------------------------------

    def _emitter(self, log: StreamLog) -> Emit:
        def emit(message: dict[str, Any]) -> None:
            if not log.aborted:
                log.append(dump_json(message, self.faults.sse_multiline_data))

        return emit

    async def _process(self, session: Session, message: dict[str, Any], reply: Emit) -> None:
        """Serve one client message; `reply` carries its response and related notifications."""
        method = message.get("method")
        if method is None:
            self._accept_client_response(session, message)
            return
        if "id" not in message:
            self._on_notification(session, method, message.get("params") or {})
            return
        request_id = message["id"]
        params = message.get("params") or {}
        if not session.initialized and method not in ("initialize", "ping"):
            reply(_rpc_error(request_id, -32600, "Session not initialized: send initialize first"))
            return
        with anyio.CancelScope() as scope:
            session.in_flight[request_id] = scope
            try:
                response = await self._serve_request(session, request_id, method, params, reply)
            finally:
                session.in_flight.pop(request_id, None)
        if scope.cancel_called:
            return  # cancelled by the client: no response (or the session was dropped)
        reply(response)

    def _accept_client_response(self, session: Session, message: dict[str, Any]) -> None:
        waiter = session.pending_server_requests.get(message.get("id"))
        if waiter is not None:
            waiter[1].append(message)
            waiter[0].set()

    def _on_notification(self, session: Session, method: str, params: dict[str, Any]) -> None:
        if method == "notifications/initialized":
            session.initialized = True
        elif method == "notifications/cancelled":
            request_id = params.get("requestId")
            session.cancelled.append(request_id)
            scope = session.in_flight.get(request_id)
            if scope is not None:
                scope.cancel()

    async def _serve_request(
        self, session: Session, request_id: Any, method: str, params: dict[str, Any], reply: Emit
    ) -> dict[str, Any]:
        if method == "initialize":
            requested = params.get("protocolVersion")
            version = self.faults.initialize_version or (
                requested if requested in HANDSHAKE_VERSIONS else LATEST_VERSION
            )
            session.protocol_version = version
            session.initialized = True
            capabilities = {"tools": {}, "logging": {}, "resources": {"subscribe": True}}
            return _rpc_result(
                request_id,
                {"protocolVersion": version, "capabilities": capabilities, "serverInfo": SERVER_INFO},
            )
        if method == "ping":
            return _rpc_result(request_id, {})
        if method == "tools/list":
            return _rpc_result(request_id, {"tools": TOOLS})
        if method == "tools/call":
            return await self._call_tool(session, request_id, params, reply)
        if method == "logging/setLevel":
            session.log_level = params.get("level", "debug")
            return _rpc_result(request_id, {})
        if method == "resources/list":
            return _rpc_result(request_id, {"resources": []})
        if method == "resources/subscribe":
            session.subscriptions.add(params.get("uri", ""))
            return _rpc_result(request_id, {})
        if method == "resources/unsubscribe":
            session.subscriptions.discard(params.get("uri", ""))
            return _rpc_result(request_id, {})
        return _rpc_error(request_id, -32601, f"Method not found: {method}")

    async def _call_tool(
        self, session: Session, request_id: Any, params: dict[str, Any], reply: Emit
    ) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if name == "echo":
            return self._text_result(request_id, str(arguments.get("text", "")))
        if name == "slow":
            token = (params.get("_meta") or {}).get("progressToken")
            steps = max(1, int(arguments.get("steps", 4)))
            seconds = float(arguments.get("seconds", 1.0))
            for step in range(1, steps + 1):
                await anyio.sleep(seconds / steps)
                if token is not None:
                    progress = {"progressToken": token, "progress": step, "total": steps}
                    reply({"jsonrpc": "2.0", "method": "notifications/progress", "params": progress})
            return self._text_result(request_id, f"slept {seconds}")
        if name == "log":
            level = arguments.get("level", "info")
            if level in LOG_LEVELS and LOG_LEVELS.index(level) >= LOG_LEVELS.index(session.log_level):
                data = {"level": level, "logger": "fault_server", "data": arguments.get("message", "")}
                reply({"jsonrpc": "2.0", "method": "notifications/message", "params": data})
            return self._text_result(request_id, "logged")
        if name == "sample":
            return await self._sample(session, request_id, str(arguments.get("prompt", "")), reply)
        return _rpc_error(request_id, -32602, f"Unknown tool: {name}")

    async def _sample(self, session: Session, request_id: Any, prompt: str, reply: Emit) -> dict[str, Any]:
        # Integer ids from 1, per session: they collide with the client's own ids on purpose.
        server_id = next(session.server_ids)
        done = anyio.Event()
        answers: list[dict[str, Any]] = []
        session.pending_server_requests[server_id] = (done, answers)
        message = {"role": "user", "content": {"type": "text", "text": prompt}}
        request = {
            "jsonrpc": "2.0",
            "id": server_id,
            "method": "sampling/createMessage",
            "params": {"messages": [message], "maxTokens": 100},
        }
        try:
            reply(request)
            await done.wait()
        finally:
            session.pending_server_requests.pop(server_id, None)
        answer = answers[0]
        if "error" in answer:
            return self._text_result(
                request_id, f"sampling failed: {answer['error'].get('message')}", is_error=True
            )
        content = answer.get("result", {}).get("content", {})
        return self._text_result(request_id, content.get("text", "") if isinstance(content, dict) else "")

    @staticmethod
    def _text_result(request_id: Any, text: str, is_error: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
        if is_error:
            result["isError"] = True
        return _rpc_result(request_id, result)


def _quiet_deliberate_cuts() -> None:
    logging.getLogger("uvicorn.error").addFilter(_HideDeliberateCuts())


@asynccontextmanager
async def running_fault_server(port: int = 0) -> AsyncIterator[tuple[FaultServer, str]]:
    """Serve a fresh FaultServer in this event loop; yields it and its base URL (`http://127.0.0.1:<port>`)."""
    _quiet_deliberate_cuts()
    app = FaultServer()
    sock = bind_loopback(port)
    bound_port = sock.getsockname()[1]
    ready = anyio.Event()
    server = build_server(app, ready.set)
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_serve_socket, server, sock)
            with anyio.fail_after(10):
                await ready.wait()
            try:
                yield app, f"http://127.0.0.1:{bound_port}"
            finally:
                app.restart()  # ends open SSE streams so uvicorn need not wait for them
                server.should_exit = True
    finally:
        sock.close()


async def _serve_socket(server: Any, sock: socket.socket) -> None:
    await server.serve(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> None:
    parser = server_arguments("tests.servers.fault_server", __doc__)
    parser.add_argument("--certfile", help="serve https with this PEM certificate")
    parser.add_argument("--keyfile", help="the private key of --certfile")
    args = parser.parse_args(argv)
    _quiet_deliberate_cuts()
    serve_forever(FaultServer(), args.port, certfile=args.certfile, keyfile=args.keyfile)


if __name__ == "__main__":
    main()
