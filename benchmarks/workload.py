"""The benchmark's workload, shared by the upstream server and the clients: JSON-RPC lines and the blob.

Everything here is pure and deterministic, so the upstream can produce a large result and a client can
check it arrived intact without the two exchanging anything but the protocol itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

PROTOCOL_VERSION = "2025-06-18"
LARGE_SIZE = 4 * 1024 * 1024

#: Responses from our upstream start like this; a proxy that re-serialises may not, hence the fallback.
_LEADING_ID = re.compile(rb'^\{"jsonrpc":\s*"2\.0",\s*"id":\s*(\d+)\s*[,}]')

_LINE = 'line {:07d}: the quick brown fox jumps over the lazy dog; "quoted", back\\slash, tab\t.\n'


def blob_text(size: int) -> str:
    """`size` characters of ASCII text, identical on every call, with characters JSON must escape."""
    return _blob_text(size)


@lru_cache(maxsize=4)
def _blob_text(size: int) -> str:
    line_len = len(_LINE.format(0))
    count = size // line_len + 1
    return "".join(_LINE.format(i) for i in range(count))[:size]


@lru_cache(maxsize=4)
def blob_digest(size: int) -> str:
    return hashlib.sha256(blob_text(size).encode()).hexdigest()


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def request(msg_id: int, method: str, params: dict[str, Any] | None = None) -> bytes:
    obj: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        obj["params"] = params
    return encode(obj)


def notification(method: str) -> bytes:
    return encode({"jsonrpc": "2.0", "method": method})


def initialize(msg_id: int) -> bytes:
    return request(
        msg_id,
        "initialize",
        {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-sse-proxy-bench", "version": "1"},
        },
    )


def echo_call(msg_id: int, tool: str = "echo") -> bytes:
    return request(msg_id, "tools/call", {"name": tool, "arguments": {"text": f"hello {msg_id}"}})


def aggregate_echo(profiles: int) -> Callable[[int], bytes]:
    """Echo calls spread over the `profiles` members of an aggregate (tools `p1__echo` … `pN__echo`)."""
    return lambda msg_id: echo_call(msg_id, f"p{msg_id % profiles + 1}__echo")


def aggregate_config(url: str, profiles: int) -> str:
    """A YAML file of `profiles` profiles `p1` … `pN`, all on the same upstream `url`."""
    return "profiles:\n" + "".join(f"  p{i}:\n    url: {url}\n" for i in range(1, profiles + 1))


def blob_call(msg_id: int, size: int) -> bytes:
    return request(msg_id, "tools/call", {"name": "blob", "arguments": {"size": size}})


def response_id(line: bytes) -> int | str | None:
    """The id of a JSON-RPC line: a regex on the head for our own server's layout, else a full parse."""
    match = _LEADING_ID.match(line[:64])
    if match:
        return int(match.group(1))
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj.get("id") if isinstance(obj, dict) else None


def check_echo(line: bytes) -> None:
    """Raise unless `line` is the echo result for the request with its id (the client matched the id)."""
    obj = json.loads(line)
    text = obj["result"]["content"][0]["text"]
    if text != f"hello {obj.get('id')}":
        raise AssertionError(f"wrong echo result: {line[:200]!r}")


def check_blob(line: bytes, size: int) -> None:
    """Raise unless `line` is a tools/call result carrying exactly the blob of `size` characters."""
    obj = json.loads(line)
    text = obj["result"]["content"][0]["text"]
    if len(text) != size or hashlib.sha256(text.encode()).hexdigest() != blob_digest(size):
        raise AssertionError(f"the {size}-byte blob arrived altered ({len(text)} characters)")
