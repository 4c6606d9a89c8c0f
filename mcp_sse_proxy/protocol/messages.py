"""JSON-RPC message classification for a relay.

A relay routes on `id` and `method`; everything else passes through as the bytes it came in. A `Message`
keeps the original compact line (`raw`) and parses the body only when someone asks for it.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Any

JsonId = str | int
#: A dictionary key for a JSON-RPC id or progress token that keeps 1 and "1" apart (they are different ids).
IdKey = tuple[bool, object]


def id_key(value: object) -> IdKey:
    """Dictionary key that keeps 1 and "1" apart."""
    return (isinstance(value, str), value)


PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class Kind(Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"
    BATCH = "batch"


class InvalidMessage(ValueError):
    """A line that is not a JSON-RPC message; `code` is -32700 or -32600, `id` what could be read of it."""

    def __init__(self, code: int, reason: str, msg_id: JsonId | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.id = msg_id


_UNPARSED: Any = object()


class Message:
    """One JSON-RPC message (or batch) as a single line of UTF-8 JSON without the newline.

    `raw` is what goes on the wire. `body` (the decoded JSON) is parsed on first use: a large message the
    relay only routes is never decoded.
    """

    __slots__ = ("raw", "kind", "id", "method", "_body", "_is_error")

    def __init__(
        self,
        raw: bytes,
        kind: Kind,
        id: JsonId | None,
        method: str | None,
        body: Any = _UNPARSED,
        is_error: bool | None = None,
    ) -> None:
        self.raw = raw
        self.kind = kind
        self.id = id
        self.method = method
        self._body = body
        self._is_error = is_error

    def __repr__(self) -> str:
        return (
            f"Message(kind={self.kind.value}, id={self.id!r}, method={self.method!r}, {len(self.raw)} bytes)"
        )

    @property
    def body(self) -> Any:
        """The decoded JSON; `InvalidMessage` (-32700) when a message routed undecoded cannot be decoded."""
        if self._body is _UNPARSED:
            self._body = _decode(self.raw, self.id)
        return self._body

    @property
    def is_parsed(self) -> bool:
        return self._body is not _UNPARSED

    @property
    def is_request(self) -> bool:
        return self.kind is Kind.REQUEST

    @property
    def is_response(self) -> bool:
        return self.kind is Kind.RESPONSE

    @property
    def is_error(self) -> bool:
        """Whether this is an error response (known without decoding a large message)."""
        if self._is_error is None:
            self._is_error = self.kind is Kind.RESPONSE and isinstance(self.body.get("error"), dict)
        return self._is_error

    def mentions(self, text: bytes) -> bool:
        """Whether `text` occurs in the raw line: a cheap guard before decoding a large message."""
        return self.is_parsed or len(self.raw) < LAZY_THRESHOLD or text in self.raw

    @property
    def params(self) -> dict[str, Any]:
        params = self.body.get("params") if isinstance(self.body, dict) else None
        return params if isinstance(params, dict) else {}

    def with_id(self, new_id: JsonId) -> Message:
        """The same message under another id (re-encoded: only used where an id must change)."""
        body = dict(self.body)
        body["id"] = new_id
        return from_obj(body)

    def with_body(self, body: dict[str, Any]) -> Message:
        return from_obj(body)


#: Messages at least this large are routed from their first (or last) bytes, without decoding.
LAZY_THRESHOLD = 256 * 1024
_ID = rb'(-?\d+|"(?:[^"\\\x00-\x1f]|\\.)*")'
_WS = rb"[ \t\r\n]*"


def _tokens(*parts: bytes) -> bytes:
    """A pattern matching `parts` in order with any JSON whitespace between them."""
    return _WS.join(parts)


_ENVELOPE = _tokens(rb"\{", rb'"jsonrpc"', rb":", rb'"2\.0"', rb",", rb'"id"', rb":", _ID, rb",")
_HEAD_RESPONSE = re.compile(rb"\A" + _tokens(_WS, _ENVELOPE, rb'"(result|error)"', rb":"))
_HEAD_REQUEST = re.compile(
    rb"\A" + _tokens(_WS, _ENVELOPE, rb'"method"', rb":", rb'"([A-Za-z0-9_/.:$-]+)"', rb",")
)
_HEAD_RESULT_FIRST = re.compile(rb"\A" + _tokens(_WS, rb"\{", rb'"(result|error)"', rb":"))
_TAIL_ID = re.compile(
    _tokens(rb'"jsonrpc"', rb":", rb'"2\.0"', rb",", rb'"id"', rb":", _ID, rb"\}", _WS) + rb"\Z"
)
_PEEK = 512


def _peek(raw: bytes) -> Message | None:
    """Kind, id and method of a large message from its first or last bytes, or None to decode it fully.

    Recognises the layouts SDKs write (`{"jsonrpc":"2.0","id":…,"result":…}`, requests with `method`
    before `params`, and results first with the id at the end). Anything else is decoded as usual.
    """
    if not raw.rstrip().endswith(b"}"):
        return None
    head = raw[:_PEEK]
    match = _HEAD_RESPONSE.match(head)
    if match is not None:
        return Message(
            raw, Kind.RESPONSE, json.loads(match.group(1)), None, is_error=match.group(2) == b"error"
        )
    match = _HEAD_REQUEST.match(head)
    if match is not None:
        return Message(raw, Kind.REQUEST, json.loads(match.group(1)), match.group(2).decode("ascii"))
    match = _HEAD_RESULT_FIRST.match(head)
    tail = _TAIL_ID.search(raw[-_PEEK:]) if match is not None else None
    if match is not None and tail is not None:
        return Message(
            raw, Kind.RESPONSE, json.loads(tail.group(1)), None, is_error=match.group(1) == b"error"
        )
    return None


def _decode(raw: bytes | str, msg_id: JsonId | None = None) -> Any:
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidMessage(PARSE_ERROR, f"invalid JSON: {exc}", msg_id) from None
    except RecursionError:
        raise InvalidMessage(PARSE_ERROR, "invalid JSON: nested too deeply", msg_id) from None


def encode(obj: Any) -> bytes:
    """Compact, single-line UTF-8 JSON (no newline can appear: JSON strings escape it)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (legal as a JSON escape) has no UTF-8 form: keep it escaped.
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _is_valid_id(value: Any) -> bool:
    return (isinstance(value, str) or isinstance(value, int)) and not isinstance(value, bool)


def classify(obj: Any) -> tuple[Kind, JsonId | None, str | None]:
    """Kind, id and method of a decoded JSON value, or `InvalidMessage` (-32600) if it is not JSON-RPC."""
    if isinstance(obj, list):
        if not obj:
            raise InvalidMessage(INVALID_REQUEST, "empty batch")
        for item in obj:
            if isinstance(item, list):
                raise InvalidMessage(INVALID_REQUEST, "a batch cannot contain a batch")
            classify(item)  # every member must be a JSON-RPC message (raises -32600 otherwise)
        return Kind.BATCH, None, None
    if not isinstance(obj, dict):
        raise InvalidMessage(INVALID_REQUEST, f"expected a JSON-RPC object, got {type(obj).__name__}")
    raw_id = obj.get("id")
    msg_id = raw_id if _is_valid_id(raw_id) else None
    if obj.get("jsonrpc") != "2.0":
        raise InvalidMessage(INVALID_REQUEST, 'missing "jsonrpc": "2.0"', msg_id)
    method = obj.get("method")
    if method is not None:
        if not isinstance(method, str):
            raise InvalidMessage(INVALID_REQUEST, "method must be a string", msg_id)
        if "id" not in obj:
            return Kind.NOTIFICATION, None, method
        if msg_id is None:
            raise InvalidMessage(INVALID_REQUEST, "request id must be a string or an integer")
        return Kind.REQUEST, msg_id, method
    if "result" in obj or "error" in obj:
        if "id" not in obj:
            raise InvalidMessage(INVALID_REQUEST, "response without id")
        # A response may carry id null (an error about an unreadable request); keep it routable as None.
        if raw_id is not None and msg_id is None:
            raise InvalidMessage(INVALID_REQUEST, "response id must be a string, an integer or null")
        return Kind.RESPONSE, msg_id, None
    raise InvalidMessage(INVALID_REQUEST, "neither a request, a notification nor a response", msg_id)


def parse(line: bytes | str) -> Message:
    """Parse one line into a `Message`, raising `InvalidMessage` with the JSON-RPC code to answer.

    A line of `LAZY_THRESHOLD` bytes or more in a layout `_peek` recognises is routed without decoding.
    """
    if len(line) >= LAZY_THRESHOLD:
        raw = line.encode("utf-8") if isinstance(line, str) else line
        if b"\n" not in raw and b"\r" not in raw:
            peeked = _peek(raw)
            if peeked is not None:
                if isinstance(line, bytes) and not line.isascii():
                    # Routed undecoded, so written on as is: it must at least be UTF-8 (a fast check;
                    # ASCII, the common case, needs no decoding and no copy of the message as text).
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise InvalidMessage(PARSE_ERROR, f"invalid UTF-8: {exc}", peeked.id) from None
                return peeked
    obj = _decode(line)
    kind, msg_id, method = classify(obj)
    raw = line.encode("utf-8") if isinstance(line, str) else line
    if b"\n" in raw or b"\r" in raw:
        # Pretty-printed JSON: newlines can only be whitespace between tokens (strings escape them).
        raw = raw.replace(b"\r", b" ").replace(b"\n", b" ")
    return Message(raw=raw, kind=kind, id=msg_id, method=method, body=obj)


def from_obj(obj: Any) -> Message:
    """A `Message` for an object the proxy builds itself."""
    kind, msg_id, method = classify(obj)
    return Message(raw=encode(obj), kind=kind, id=msg_id, method=method, body=obj)


def error_response(msg_id: JsonId | None, code: int, message: str, data: Any = None) -> Message:
    """The proxy's own error answer; its message passes through redaction, as every log line does."""
    from ..redaction import redact  # pure text rules; here so that no error text of ours carries a secret

    error: dict[str, Any] = {"code": code, "message": redact(message)}
    if data is not None:
        error["data"] = data
    return from_obj({"jsonrpc": "2.0", "id": msg_id, "error": error})


def request(msg_id: JsonId, method: str, params: dict[str, Any] | None = None) -> Message:
    obj: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        obj["params"] = params
    return from_obj(obj)


def notification(method: str, params: dict[str, Any] | None = None) -> Message:
    obj: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        obj["params"] = params
    return from_obj(obj)


PROTOCOL_VERSION_META = "io.modelcontextprotocol/protocolVersion"


def modern_version(message: Message) -> str | None:
    """The protocol version a 2026-07-28-era request carries in `params._meta`, or None (handshake era)."""
    if message.kind is not Kind.REQUEST or not message.mentions(PROTOCOL_VERSION_META.encode()):
        return None
    meta = message.params.get("_meta")
    version = meta.get(PROTOCOL_VERSION_META) if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None
