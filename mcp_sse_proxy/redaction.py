"""The one place secrets are masked: configured secret values and credential-shaped text in log lines.

Every handler that `logs.configure_logging` installs formats through `RedactingFormatter`, so a secret
that reaches a log message, an exception text or a traceback is replaced by `MASK` before it is written.
Secrets learnt while running (OAuth tokens, session ids) are added with `register_secret`; every `Redactor`
masks them from then on. Each secret is also masked in its escaped forms (Python `repr`, JSON, percent-encoded),
since error texts quote values that way.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
#: Shorter values are not masked: replacing every "1" or "on" would make logs unreadable, and such
#: values are not credentials.
MIN_SECRET_LENGTH = 4

# `Authorization: x`, `"authorization": "x"`, `proxy-authorization=x`: everything up to the end of the
# quoted value or line.
_AUTH_HEADER = re.compile(r"(?i)\b((?:proxy-)?authorization)([\"']?\s*[:=]\s*)([\"']?)([^\"'\r\n]*)")
# A token68 only: `Bearer realm="x"` in a WWW-Authenticate challenge is an auth-param, not a credential.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*(?![=\"A-Za-z0-9\-._~+/])")
# Headers whose values are credentials wherever they are printed: `Mcp-Session-Id: x`, httpcore's
# `(b'mcp-session-id', b'x')`, JSON `"cookie": "x"`.
_SECRET_HEADER = re.compile(
    r"(?i)\b(mcp-session-id|set-cookie|cookie)(['\"]?\s*(?:[:=]|,\s*b?['\"])\s*['\"]?)([^'\"\r\n;,)\s]+)"
)
# In any http(s) URL of a text: the userinfo, and each query value (either may hold a token).
_URL = re.compile(r"(?i)\bhttps?://[^\s\"'<>]+")
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@]*@")
_QUERY_VALUE = re.compile(r"([?&][^=&#]*=)[^&#]*")

#: Secrets learnt while running (session ids, refreshed tokens) kept at most: the oldest go first. Those
#: registered as `lasting` (the configuration's, an OAuth client secret) are always kept.
MAX_LEARNT_SECRETS = 4096

_lock = threading.Lock()
_lasting: set[str] = set()
_learnt: dict[str, None] = {}  # insertion-ordered
_generation = 0


def register_secret(value: str, *, lasting: bool = False) -> None:
    """Mask `value` (and its escaped forms) in every log line and error text from now on.

    `lasting` secrets (configured values) are never forgotten; others (a session id, an access token that
    will be refreshed) are, once MAX_LEARNT_SECRETS newer ones have been registered.
    """
    global _generation
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        if value in _lasting or (not lasting and value in _learnt):
            return
        if lasting:
            _lasting.add(value)
            _learnt.pop(value, None)
        else:
            _learnt[value] = None
            while len(_learnt) > MAX_LEARNT_SECRETS:
                del _learnt[next(iter(_learnt))]
        _generation += 1


def registered_secrets() -> frozenset[str]:
    with _lock:
        return frozenset(_lasting | _learnt.keys())


def _forms(secret: str) -> set[str]:
    """The secret as written and as `repr`, JSON and percent-encoding would quote it."""
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def mask_url(url: str) -> str:
    """One URL (as configured, possibly malformed) with its userinfo and every query value replaced."""
    url = _USERINFO.sub(lambda m: f"{m[1]}{MASK}@", url)
    head, sep, query = url.partition("?")
    if not sep:
        return url
    return head + _QUERY_VALUE.sub(lambda m: m[1] + MASK, "?" + query)


def mask_urls(text: str) -> str:
    """`text` with the userinfo and every query value of each http(s) URL in it replaced by `MASK`."""
    return _URL.sub(lambda match: mask_url(match[0]), text)


class Redactor:
    """Masks a set of secret values (plus every registered one) and credential patterns in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._own = frozenset(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
        self._seen = -1
        self._secrets: re.Pattern[str] | None = None

    def _pattern(self) -> re.Pattern[str] | None:
        if self._seen != _generation:
            with _lock:
                values = self._own | _lasting | _learnt.keys()
                self._seen = _generation
            forms = sorted({form for value in values for form in _forms(value)}, key=len, reverse=True)
            self._secrets = re.compile("|".join(map(re.escape, forms))) if forms else None
        return self._secrets

    def mask_values(self, text: str) -> str:
        """`text` with every secret value replaced (credential patterns left as they are)."""
        pattern = self._pattern()
        return pattern.sub(MASK, text) if pattern is not None else text

    def redact(self, text: str) -> str:
        """`text` with every secret value, URL credential, Authorization header value and bearer token replaced."""
        text = mask_urls(self.mask_values(text))
        text = _AUTH_HEADER.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{MASK if m[4] else ''}", text)
        text = _SECRET_HEADER.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)
        return _BEARER.sub(lambda m: f"{m[1]}{m[2]}{MASK}", text)


_shared = Redactor()


def redact(text: str) -> str:
    """`text` redacted with the registered secrets (for error texts built outside logging)."""
    return _shared.redact(text)


class RedactingFormatter(logging.Formatter):
    """A Formatter whose whole output (message, exception, stack) passes through a Redactor."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, *, redactor: Redactor) -> None:
        super().__init__(fmt, datefmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(super().format(record))
