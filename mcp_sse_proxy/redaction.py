"""The one place secrets are masked: configured secret values and credential-shaped text in log lines.

Every handler that `logs.configure_logging` installs formats through `RedactingFormatter`, so a secret
that reaches a log message, an exception text or a traceback is replaced by `MASK` before it is written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
#: Shorter values are not masked: replacing every "1" or "on" would make logs unreadable, and such
#: values are not credentials.
MIN_SECRET_LENGTH = 4

# `Authorization: x`, `"authorization": "x"`, `proxy-authorization=x`: everything up to the end of the
# quoted value or line.
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization)([\"']?\s*[:=]\s*)([\"']?)([^\"'\r\n]*)")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*")


class Redactor:
    """Masks a fixed set of secret values and credential patterns in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, values))) if values else None

    def mask_values(self, text: str) -> str:
        """`text` with every configured secret value replaced (credential patterns left as they are)."""
        return self._secrets.sub(MASK, text) if self._secrets is not None else text

    def redact(self, text: str) -> str:
        """`text` with every secret value, Authorization header value and bearer token replaced."""
        text = self.mask_values(text)
        text = _AUTH_HEADER.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{MASK if m[4] else ''}", text)
        return _BEARER.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)


class RedactingFormatter(logging.Formatter):
    """A Formatter whose whole output (message, exception, stack) passes through a Redactor."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, *, redactor: Redactor) -> None:
        super().__init__(fmt, datefmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(super().format(record))
