"""Small helpers shared by the HTTP transports: status descriptions, error mapping, header reading."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator

import httpx2

from ..errors import UpstreamError, UpstreamUnavailable
from ..redaction import redact


def describe_status(resp: httpx2.Response) -> str:
    return f"HTTP {resp.status_code} {resp.reason_phrase}".rstrip()


def is_event_stream(resp: httpx2.Response) -> bool:
    return resp.headers.get("content-type", "").partition(";")[0].strip().lower() == "text/event-stream"


def is_json(resp: httpx2.Response) -> bool:
    return resp.headers.get("content-type", "").partition(";")[0].strip().lower() == "application/json"


def retry_after(resp: httpx2.Response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    value = resp.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def request_error(exc: httpx2.HTTPError, method: str, url: str) -> UpstreamError:
    """An `UpstreamError` naming what failed, for a transport-level httpx2 error."""
    kind = type(exc).__name__
    detail = redact(str(exc)) or kind  # httpx2's texts may quote a header value or a URL with its token
    if isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ProxyError)):
        return UpstreamUnavailable(f"cannot connect to {url}: {detail}")
    if isinstance(exc, httpx2.TimeoutException):
        return UpstreamError(f"{method} {url} timed out ({kind})")
    return UpstreamError(f"{method} {url} failed: {kind}: {detail}")


class _LineEndingsAsLF:
    """A response as `httpx2.EventSource` reads it, with CR and CRLF line endings turned into LF.

    httpx2's decoder holds a chunk's trailing CR back until more text arrives (it might start a CRLF), so
    a server ending its lines with a lone CR would have its last event stuck until the next one.
    """

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response
        self.headers = response.headers
        self.request = response.request

    async def aiter_text(self) -> AsyncIterator[str]:
        after_cr = False
        async for text in self._response.aiter_text():
            if after_cr and text.startswith("\n"):
                text = text[1:]  # the LF of a CRLF split across chunks
            if "\r" in text:
                after_cr = text.endswith("\r")
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            else:
                after_cr = False
            if text:
                yield text


def event_source(response: httpx2.Response, max_event_size: int) -> httpx2.EventSource:
    """httpx2's SSE decoder over `response`, with our size limit and any line-ending convention."""
    return httpx2.EventSource(_LineEndingsAsLF(response), max_event_size=max_event_size)  # type: ignore[arg-type]
