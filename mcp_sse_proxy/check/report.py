"""One profile's check report: the dict `schemas/check-report.schema.json` describes, and its steps.

Steps are recorded as they finish; a failed step ends the check (`StepFailed`) with one `hint` line on what
to try next. Secret values are masked here, the one place the check's output passes through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NoReturn
from urllib.parse import urlsplit

import anyio

from ..config.model import Profile
from ..config.secrets import header_secrets
from ..protocol.urls import display
from ..redaction import MIN_SECRET_LENGTH, Redactor

PROG = "mcp-sse-proxy"

#: Called with (profile name, step entry) as each step finishes: the progress lines on a terminal.
StepCallback = Callable[[str, dict[str, Any]], None]

_URL_IN_TEXT = re.compile(r"https?://[^\s'\"()<>]+")


class StepFailed(Exception):
    """Ends one check early; the failed step and the error are already in the report."""


def now() -> float:
    return anyio.current_time()


def ms_since(started: float) -> float:
    return round((now() - started) * 1000, 1)


def error_entry(
    step: str, message: str, hint: str, status: int | None = None, challenge: str | None = None
) -> dict[str, Any]:
    return {
        "step": step,
        "message": message,
        "hint": hint,
        "http_status": status,
        "www_authenticate": challenge,
    }


class CheckReport:
    """The report of one profile's check, filled in step by step (`data` is the schema's `profile`)."""

    def __init__(self, profile: Profile, on_step: StepCallback | None = None) -> None:
        self.profile = profile
        self._on_step = on_step
        self.data: dict[str, Any] = {
            "profile": profile.name,
            "ok": False,
            "url": display(profile.url),
            "url_source": profile.sources.get("url"),
            "transport_setting": profile.transport,
            "proxy": None,
            "steps": [],
            "dns": None,
            "tcp": None,
            "tls": None,
            "transport": None,
            "server": None,
            "counts": {"tools": None, "prompts": None, "resources": None},
            "tools": [],
            "latency_ms": None,
            "notes": [],
            "error": None,
        }

    def record(
        self, step: str, status: str, detail: str, started: float | None = None, hint: str | None = None
    ) -> None:
        entry = {
            "step": step,
            "status": status,
            "detail": detail,
            "elapsed_ms": ms_since(started) if started is not None else None,
            "hint": hint,
        }
        self.data["steps"].append(entry)
        if self._on_step is not None:
            self._on_step(self.profile.name, mask_secrets(entry, profile_secrets(self.profile)))

    def fail(
        self,
        step: str,
        message: str,
        hint: str,
        started: float | None = None,
        *,
        status: int | None = None,
        challenge: str | None = None,
    ) -> NoReturn:
        self.record(step, "failed", message, started, hint)
        self.data["error"] = error_entry(step, message, hint, status, challenge)
        raise StepFailed

    def note(self, text: str) -> None:
        self.data["notes"].append(text)

    def masked(self) -> dict[str, Any]:
        """The report with the profile's secrets masked (`run_check` also masks the configuration's)."""
        return mask_secrets(self.data, profile_secrets(self.profile))


def crashed_report(profile: Profile, exc: Exception) -> dict[str, Any]:
    """The report of a check that raised: a bug of ours, shown as a failed `internal` step."""
    report = CheckReport(profile)
    message = f"the check itself failed: {type(exc).__name__}: {clean_urls(str(exc))}"
    hint = "this is a bug in mcp-sse-proxy: please report it with this output"
    report.record("internal", "failed", message, hint=hint)
    report.data["error"] = error_entry("internal", message, hint)
    return report.masked()


def profile_secrets(profile: Profile) -> set[str]:
    """Values of a profile that must never be shown: header values, their credentials, the URL's password."""
    found = header_secrets(profile.headers.values())
    try:
        password = urlsplit(profile.url).password
    except ValueError:
        password = None
    if password:
        found.add(password)
    return {secret for secret in found if len(secret) >= MIN_SECRET_LENGTH}


def mask_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """`value` (a JSON-like structure) with every secret value inside its strings replaced by the mask."""
    redactor = Redactor(secrets)  # the one place secret values are masked

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return redactor.mask_values(item)
        if isinstance(item, dict):
            return {walk(key): walk(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [walk(inner) for inner in item]
        return item

    return walk(value)


def clean_urls(text: str) -> str:
    """`text` with every URL shown without userinfo or query (either may hold a token)."""
    return _URL_IN_TEXT.sub(lambda match: display(match.group(0)), text)
