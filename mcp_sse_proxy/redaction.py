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


#: Secrets learnt while running (OAuth tokens read from the store or received), masked by every Redactor.
_learnt: set[str] = set()
_learnt_pattern: re.Pattern[str] | None = None


def add_secret(value: str | None) -> None:
    """Mask `value` from now on in every redacted text (tokens become secrets the moment they are seen)."""
    global _learnt_pattern
    if not value or len(value) < MIN_SECRET_LENGTH or value in _learnt:
        return
    _learnt.add(value)
    _learnt_pattern = _pattern(_learnt)


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    values = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, values))) if values else None


class Redactor:
    """Masks a fixed set of secret values (plus those `add_secret` learnt) and credential patterns."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = _pattern(secrets)

    def mask_values(self, text: str) -> str:
        """`text` with every configured secret value replaced (credential patterns left as they are)."""
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        learnt = _learnt_pattern
        return learnt.sub(MASK, text) if learnt is not None else text

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
