"""How a send upstream can fail, as the relay core distinguishes it."""

from __future__ import annotations

import enum


class Failure(enum.Enum):
    #: The server forgot the session (HTTP 404): the request was not processed.
    SESSION_EXPIRED = "session expired"
    #: The response stream broke before the answer and cannot be resumed.
    STREAM_LOST = "stream lost"
    #: 429 or 503: the server asks to come back later (`retry_after`).
    BUSY = "busy"
    #: The message could not be decoded where a rule needed its body.
    UNDECODABLE = "undecodable"
    #: Anything else: the request is answered with the reason.
    FAILED = "failed"
