"""`--check`: reach each selected profile's server the way the relay does, and report every step.

A check resolves the host, opens a TCP connection, shakes hands over TLS, detects the transport with the
relay's own `transports.detect.connect`, runs the MCP handshake and a few read-only requests, measures
`ping` latency and ends the session. Every failure carries one `hint` line saying what to try next. A report
is a plain dict (its shape is `schemas/check-report.schema.json`); `run_check` prints the reports of all
selected profiles for people, or as one JSON document. Secret values never appear in the output.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import socket
import ssl
import statistics
import sys
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit

import anyio
import httpx2
from anyio.abc import ByteStream, SocketAttribute, TaskGroup
from anyio.streams.tls import TLSAttribute, TLSStream

from . import __version__
from .config.model import AppConfig, Profile
from .errors import (
    EndpointRefused,
    SessionExpired,
    SessionLost,
    StreamLost,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamUnavailable,
)
from .httpclient import build_client, ssl_context
from .protocol import messages as jsonrpc
from .protocol.messages import JsonId, Kind, Message
from .protocol.urls import candidate_urls, display
from .redaction import MIN_SECRET_LENGTH, Redactor
from .transports import detect
from .transports.base import Upstream

PROG = "mcp-sse-proxy"
CHECK_PROTOCOL_VERSION = "2025-11-25"
CLIENT_NAME = "mcp-sse-proxy-check"
PING_COUNT = 3
MAX_LIST_PAGES = 50
EXPIRY_WARNING_DAYS = 14
CLOSE_TIMEOUT = 5.0
#: Tool names listed in the human report before "…".
SHOWN_NAMES = 12
EXIT_OK = 0
EXIT_FAILURE = 1

#: Called with (profile name, step entry) as each step finishes: the progress lines on a terminal.
StepCallback = Callable[[str, dict[str, Any]], None]

_DETECT_LOGGER = "mcp_sse_proxy.detect"
_DETECT_PREFIX = "transport detection: "
_URL_IN_TEXT = re.compile(r"https?://[^\s'\"()<>]+")


class _StepFailed(Exception):
    """Ends one check early; the failed step and the error are already in the report."""


# --------------------------------------------------------------------------------------------------------
# Detection attempts: `detect.connect` logs each candidate that did not answer at debug level. A logger
# filter collects those lines for the check running in the current context, and lets through only what the
# logger would have emitted without it, so lowering the level for the check shows nothing more anywhere.

_attempts: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("check_attempts", default=None)


class _AttemptRecorder(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.users = 0
        self.threshold = logging.NOTSET
        self.saved_level = logging.NOTSET

    def filter(self, record: logging.LogRecord) -> bool:
        attempts = _attempts.get()
        if attempts is not None and record.levelno == logging.DEBUG:
            text = record.getMessage()
            if text.startswith(_DETECT_PREFIX):
                attempts.append(text.removeprefix(_DETECT_PREFIX))
        return record.levelno >= self.threshold


_recorder = _AttemptRecorder()


@contextmanager
def _recording_attempts() -> Iterator[None]:
    logger = logging.getLogger(_DETECT_LOGGER)
    if _recorder.users == 0:
        _recorder.threshold = logger.getEffectiveLevel()
        _recorder.saved_level = logger.level
        logger.addFilter(_recorder)
        logger.setLevel(logging.DEBUG)
    _recorder.users += 1
    try:
        yield
    finally:
        _recorder.users -= 1
        if _recorder.users == 0:
            logger.removeFilter(_recorder)
            logger.setLevel(_recorder.saved_level)


# --------------------------------------------------------------------------------------------------------
# Public API


async def check_profile(profile: Profile, *, on_step: StepCallback | None = None) -> dict[str, Any]:
    """Check one profile end to end and return its report (never raises for a failing server).

    `on_step` is called as each step finishes. Header values and URL credentials are masked in the report;
    `run_check` also masks the configuration's other secrets.
    """
    check = _Check(profile, on_step)
    with _recording_attempts():
        await check.run()
    return mask_secrets(check.report, profile_secrets(profile))


def run_check(
    config: AppConfig,
    as_json: bool,
    stream: TextIO | None = None,
    *,
    progress: TextIO | None = None,
) -> int:
    """Check every selected profile in parallel, print the reports to `stream` (default stdout); 0 if all OK.

    With `as_json`, one JSON document valid against `schemas/check-report.schema.json`. Progress lines go to
    `progress`, by default stderr when it is a terminal and nowhere otherwise.
    """
    out = stream if stream is not None else sys.stdout
    if progress is None and _is_tty(sys.stderr):
        progress = sys.stderr
    secrets = set(config.secrets)
    for profile in config.profiles:
        secrets.update(profile_secrets(profile))
    on_step = _progress_writer(progress, secrets) if progress is not None else None
    reports = anyio.run(_check_all, config.profiles, on_step)
    document = mask_secrets(build_document(config.profiles, reports), secrets)
    if as_json:
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(render_text(document))
    out.flush()
    return EXIT_OK if document["ok"] else EXIT_FAILURE


def build_document(profiles: Iterable[Profile], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The `--check --json` document for reports in profile order."""
    profiles = tuple(profiles)
    return {
        "tool": PROG,
        "version": __version__,
        "ok": all(report["ok"] for report in reports),
        "profiles": reports,
        "aggregate": _aggregate(profiles, reports),
    }


def profile_secrets(profile: Profile) -> set[str]:
    """Values of a profile that must never be shown: header values, their credentials, the URL's password."""
    found: set[str] = set()
    for value in profile.headers.values():
        found.add(value)
        _scheme, _, credential = value.partition(" ")
        if credential.strip():
            found.add(credential.strip())
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


# --------------------------------------------------------------------------------------------------------
# Running all profiles


async def _check_all(profiles: tuple[Profile, ...], on_step: StepCallback | None) -> list[dict[str, Any]]:
    reports: list[dict[str, Any] | None] = [None] * len(profiles)

    async def one(index: int, profile: Profile) -> None:
        try:
            reports[index] = await check_profile(profile, on_step=on_step)
        except Exception as exc:  # the per-profile boundary: one broken check must not hide the others
            reports[index] = _crashed_report(profile, exc)

    with _recording_attempts():
        async with anyio.create_task_group() as tg:
            for index, profile in enumerate(profiles):
                tg.start_soon(one, index, profile)
    return [report for report in reports if report is not None]


def _crashed_report(profile: Profile, exc: Exception) -> dict[str, Any]:
    check = _Check(profile, None)
    message = f"the check itself failed: {type(exc).__name__}: {_clean_urls(str(exc))}"
    hint = "this is a bug in mcp-sse-proxy: please report it with this output"
    check.record("internal", "failed", message, hint=hint)
    check.report["error"] = _error_entry("internal", message, hint)
    return mask_secrets(check.report, profile_secrets(profile))


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _progress_writer(progress: TextIO, secrets: set[str]) -> StepCallback:
    def write(profile_name: str, entry: dict[str, Any]) -> None:
        line = f"{PROG} --check: {profile_name}: {entry['step']} {entry['status']}"
        if entry["status"] == "failed":
            line += f": {entry['detail']}"
        progress.write(mask_secrets(line, secrets) + "\n")
        progress.flush()

    return write


# --------------------------------------------------------------------------------------------------------
# One check


def _now() -> float:
    return anyio.current_time()


def _ms_since(started: float) -> float:
    return round((_now() - started) * 1000, 1)


def _error_entry(
    step: str, message: str, hint: str, status: int | None = None, challenge: str | None = None
) -> dict[str, Any]:
    return {
        "step": step,
        "message": message,
        "hint": hint,
        "http_status": status,
        "www_authenticate": challenge,
    }


class _Check:
    """The steps of one profile's check and the report they fill in."""

    def __init__(self, profile: Profile, on_step: StepCallback | None) -> None:
        self.profile = profile
        self._on_step = on_step
        self.report: dict[str, Any] = {
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

    # -- bookkeeping -----------------------------------------------------------------------------------

    def record(
        self, step: str, status: str, detail: str, started: float | None = None, hint: str | None = None
    ) -> None:
        entry = {
            "step": step,
            "status": status,
            "detail": detail,
            "elapsed_ms": _ms_since(started) if started is not None else None,
            "hint": hint,
        }
        self.report["steps"].append(entry)
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
        self.report["error"] = _error_entry(step, message, hint, status, challenge)
        raise _StepFailed

    async def run(self) -> None:
        failed = False
        try:
            await self._reach()
            await self._converse()
        except* _StepFailed:  # also from inside the task group of `_converse`
            failed = True
        self.report["ok"] = not failed

    # -- DNS, TCP, TLS ---------------------------------------------------------------------------------

    async def _reach(self) -> None:
        parts = urlsplit(self.profile.url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port or {"http": 80, "https": 443}.get(scheme)
        except ValueError:
            port = None
        host = parts.hostname
        if scheme not in ("http", "https") or not host or port is None:
            self.fail(
                "url",
                f"{display(self.profile.url)} is not a usable http(s) URL",
                "give the server's full URL, e.g. https://mcp.example.com/mcp or http://127.0.0.1:8000/sse",
            )
        proxy = _env_proxy(self.profile)
        dial_host, dial_port = host, port
        if proxy is not None:
            self.report["proxy"] = display(proxy)
            proxy_parts = urlsplit(proxy)
            dial_host = proxy_parts.hostname or ""
            dial_port = proxy_parts.port or (443 if proxy_parts.scheme == "https" else 80)
        await self._resolve(dial_host, dial_port, via_proxy=proxy is not None)
        stream = await self._connect(dial_host, dial_port, via_proxy=proxy is not None)
        try:
            if scheme != "https":
                self.record("tls", "skipped", "plain http: no TLS")
            elif proxy is not None:
                self.record(
                    "tls",
                    "skipped",
                    f"tunnelled through the proxy {display(proxy)}: the MCP handshake below checks it",
                )
            else:
                stream = await self._tls(stream, host, port)
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def _resolve(self, host: str, port: int, *, via_proxy: bool) -> None:
        started = _now()
        what = "the HTTP proxy's host" if via_proxy else "the host"
        try:
            with anyio.fail_after(self.profile.connect_timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            self.fail(
                "dns",
                f"resolving {host} took longer than {self.profile.connect_timeout:g} s",
                "check this machine's DNS settings and network connection",
                started,
            )
        except (socket.gaierror, UnicodeError) as exc:
            hint = f"check {what} name {host!r}"
            if not via_proxy:
                hint += (
                    "; if this network reaches outside hosts only through an HTTP proxy, set "
                    "HTTPS_PROXY (the proxy is used unless --no-use-env-proxy)"
                )
            reason = exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc)
            self.fail("dns", f"cannot resolve {host}: {reason}", hint, started)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        self.report["dns"] = {"host": host, "port": port, "addresses": addresses, "via_proxy": via_proxy}
        shown = ", ".join(addresses[:4]) + (f" (+{len(addresses) - 4})" if len(addresses) > 4 else "")
        label = "proxy " if via_proxy else ""
        self.record("dns", "ok", f"{label}{host} -> {shown}", started)

    async def _connect(self, host: str, port: int, *, via_proxy: bool) -> ByteStream:
        started = _now()
        timeout = self.profile.connect_timeout
        try:
            with anyio.fail_after(timeout):
                stream = await anyio.connect_tcp(host, port)
        except TimeoutError:
            self.fail(
                "tcp",
                f"no TCP connection to {host}:{port} within {timeout:g} s",
                "a firewall may drop the connection, the host may be down, or this network needs an "
                "HTTP proxy (HTTPS_PROXY); on a slow network raise --connect-timeout",
                started,
            )
        except OSError as exc:
            cause = _root_os_error(exc)
            reason = os.strerror(cause.errno) if cause.errno else str(cause)
            if isinstance(cause, ConnectionRefusedError) and via_proxy:
                hint = (
                    f"the HTTP proxy at {host}:{port} refused the connection: check HTTPS_PROXY and "
                    "HTTP_PROXY, or use --no-use-env-proxy to connect directly"
                )
            elif isinstance(cause, ConnectionRefusedError):
                hint = (
                    f"nothing listens on {host}:{port}: check the host and port in the URL, and that the "
                    "server is running"
                )
            else:
                hint = f"{host}:{port} is unreachable from here: check the network route (VPN, firewall)"
            self.fail("tcp", f"cannot connect to {host}:{port}: {reason}", hint, started)
        remote = stream.extra(SocketAttribute.remote_address, None)
        address = _address_text(remote) if remote is not None else f"{host}:{port}"
        self.report["tcp"] = {"address": address, "via_proxy": via_proxy}
        self.record("tcp", "ok", f"connected to {'the proxy at ' if via_proxy else ''}{address}", started)
        return stream

    async def _tls(self, stream: ByteStream, host: str, port: int) -> ByteStream:
        started = _now()
        ca_source = _ca_source(self.profile)
        try:
            context = httpx2.create_ssl_context(
                ssl_context(self.profile), trust_env=self.profile.use_env_proxy
            )
        except (OSError, ssl.SSLError) as exc:
            self.fail(
                "tls",
                f"cannot load the TLS settings: {exc}",
                "check the paths and contents of ca_file, client_cert and client_key (PEM files)",
                started,
            )
        try:
            with anyio.fail_after(self.profile.connect_timeout):
                tls = await _wrap_tls(stream, host, context)
        except ssl.SSLCertVerificationError as exc:
            certificate = await self._unverified_certificate(host, port)
            self.report["tls"] = {
                **certificate,
                "version": None,
                "cipher": None,
                "ca_source": ca_source,
                "verified": False,
            }
            reason = exc.verify_message or exc.reason or str(exc)
            self.fail(
                "tls",
                f"the server's certificate is not trusted: {reason}",
                _certificate_hint(reason, host, certificate, ca_source),
                started,
            )
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            if "WRONG_VERSION_NUMBER" in str(exc) or "record layer failure" in str(exc).lower():
                hint = f"{host}:{port} does not speak TLS: try the URL with http:// instead of https://"
            else:
                hint = (
                    "the TLS handshake failed: check the port, and whether the server wants a client "
                    "certificate (--client-cert/--client-key)"
                )
            self.fail("tls", f"TLS handshake with {host}:{port} failed: {reason}", hint, started)
        except TimeoutError:
            self.fail(
                "tls",
                f"no TLS handshake with {host}:{port} within {self.profile.connect_timeout:g} s",
                "the port may not be a TLS port: check the URL's scheme and port",
                started,
            )
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            self.fail(
                "tls",
                f"the connection closed during the TLS handshake ({type(exc).__name__})",
                "the port may not be a TLS port, or a middlebox interferes: check the URL's scheme and port",
                started,
            )
        details = _certificate_from_dict(tls.extra(TLSAttribute.peer_certificate, None) or {})
        if details["subject"] is None:  # verification off: the ssl module does not decode the certificate
            details = _certificate_from_der(tls.extra(TLSAttribute.peer_certificate_binary, None))
        cipher = tls.extra(TLSAttribute.cipher, None)
        self.report["tls"] = {
            **details,
            "version": tls.extra(TLSAttribute.tls_version, None),
            "cipher": cipher[0] if cipher else None,
            "ca_source": ca_source,
            "verified": self.profile.tls_verify,
        }
        parts = [self.report["tls"]["version"] or "TLS"]
        if details["subject"]:
            parts.append(f"subject {details['subject']}")
        if details["issuer"]:
            parts.append(f"issuer {details['issuer']}")
        if details["not_after"]:
            parts.append(f"expires {details['not_after'][:10]} ({details['days_left']} days)")
        parts.append(f"CA: {ca_source}")
        days_left = details["days_left"]
        if not self.profile.tls_verify:
            self.record(
                "tls",
                "warning",
                "; ".join(parts),
                started,
                hint="certificate verification is off (tls_verify: false): use --ca-file instead",
            )
        elif days_left is not None and days_left < EXPIRY_WARNING_DAYS:
            self.record(
                "tls",
                "warning",
                "; ".join(parts),
                started,
                hint=f"the certificate expires in {days_left} days: tell the server's operator",
            )
        else:
            self.record("tls", "ok", "; ".join(parts), started)
        return tls

    async def _unverified_certificate(self, host: str, port: int) -> dict[str, Any]:
        """The certificate a server presents, read without verifying it, to explain a verification failure."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with anyio.fail_after(self.profile.connect_timeout):
                tls = await _wrap_tls(await anyio.connect_tcp(host, port), host, context)
        except (TimeoutError, OSError, ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream):
            return _certificate_from_der(None)
        try:
            return _certificate_from_der(tls.extra(TLSAttribute.peer_certificate_binary, None))
        finally:
            with anyio.CancelScope(shield=True):
                await tls.aclose()

    # -- MCP -------------------------------------------------------------------------------------------

    async def _converse(self) -> None:
        try:
            client = build_client(self.profile)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self.fail(
                "transport",
                f"cannot set up the HTTP client: {exc}",
                "check ca_file, client_cert and client_key, and the HTTP(S)_PROXY variables",
            )
        async with client, anyio.create_task_group() as tg:
            try:
                session = _Session(tg)
                upstream, first_sent, init = await self._detect(client, tg, session)
                try:
                    await self._handshake(upstream, session, init, first_sent)
                    await self._lists(upstream, session)
                    await self._latency(upstream, session)
                finally:
                    await self._close(upstream)
            finally:
                tg.cancel_scope.cancel()

    def _detection_budget(self, profile: Profile) -> float:
        tries = len(candidate_urls(profile.url)) if profile.transport == "auto" else 1
        return tries * profile.connect_timeout + profile.read_timeout

    def _initialize(self, session: _Session) -> Message:
        message = jsonrpc.request(
            session.next_id(),
            "initialize",
            {
                "protocolVersion": CHECK_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": CLIENT_NAME, "version": __version__},
            },
        )
        session.expect(message)
        return message

    async def _detect(
        self, client: httpx2.AsyncClient, tg: TaskGroup, session: _Session
    ) -> tuple[Upstream, bool, Message]:
        init = self._initialize(session)
        attempts: list[str] = []
        token = _attempts.set(attempts)
        started = _now()
        budget = self._detection_budget(self.profile)
        try:
            with anyio.fail_after(budget):
                upstream, first_sent = await detect.connect(
                    self.profile, client, tg, session.deliver, session.on_lost, init
                )
        except TimeoutError:
            self.report["transport"] = {"name": None, "url": None, "tried": _tried(attempts)}
            self.fail(
                "transport",
                f"no transport answered within {budget:g} s",
                "the server accepts connections but does not answer: check that the URL is its MCP "
                "endpoint and that it is healthy; for a slow server raise --read-timeout",
                started,
            )
        except UpstreamError as exc:
            self.report["transport"] = {"name": None, "url": None, "tried": _tried(attempts)}
            _attempts.reset(token)
            alternative = await self._other_transport(client, tg)
            await self._fail_upstream("transport", exc, started, alternative=alternative)
        finally:
            if _attempts.get() is attempts:
                _attempts.reset(token)
        session.upstream = upstream
        answered = {"transport": _kind(upstream), "url": display(upstream.url), "result": "answered"}
        tried = [*_tried(attempts), answered]
        self.report["transport"] = {"name": upstream.name, "url": display(upstream.url), "tried": tried}
        detail = f"{upstream.name} at {display(upstream.url)}"
        if len(tried) > 1:
            detail += f" (after {len(tried) - 1} other attempt{'s' if len(tried) > 2 else ''})"
        self.record("transport", "ok", detail, started)
        if _kind(upstream) == "sse" and self.profile.transport == "auto":
            self.report["notes"].append(
                f"the server speaks legacy HTTP+SSE (2024-11-05): --transport sse with the URL "
                f"{display(upstream.url)} skips detection at every start"
            )
        elif upstream.url != self.profile.url:
            self.report["notes"].append(
                f"the server answered at {display(upstream.url)}: use that URL to skip detection at every "
                "start"
            )
        return upstream, first_sent, init

    async def _other_transport(self, client: httpx2.AsyncClient, tg: TaskGroup) -> str | None:
        """With a forced transport that failed: what auto-detection finds at the same URL, as a hint."""
        if self.profile.transport == "auto":
            return None
        probe = replace(self.profile, transport="auto")
        session = _Session(tg)
        init = self._initialize(session)
        try:
            with anyio.fail_after(self._detection_budget(probe)):
                upstream, _ = await detect.connect(probe, client, tg, session.deliver, session.on_lost, init)
        except (UpstreamError, TimeoutError):
            return None
        try:
            kind = _kind(upstream)
            if kind == self.profile.transport and upstream.url == self.profile.url:
                return None
            if kind == "sse":
                return (
                    f"the server speaks legacy SSE at {display(upstream.url)}: use --transport sse or "
                    "the /sse URL (or --transport auto)"
                )
            return (
                f"the server speaks {kind} at {display(upstream.url)}: use --transport {kind} with "
                "that URL (or --transport auto)"
            )
        finally:
            await _close_quietly(upstream)

    async def _fail_upstream(
        self, step: str, exc: UpstreamError, started: float, *, alternative: str | None = None
    ) -> NoReturn:
        message = _clean_urls(exc.reason)
        challenge = exc.challenge if isinstance(exc, UpstreamHTTPError) else None
        hint = alternative or _hint_for(exc, self.profile)
        if isinstance(exc, detect.NoTransport) and exc.error_message is not None:
            error = exc.error_message.body.get("error") or {}
            message += f"; the server said: {error.get('message', '')}".rstrip(": ")
        self.fail(step, message, hint, started, status=exc.status, challenge=challenge)

    async def _request(
        self,
        upstream: Upstream,
        session: _Session,
        step: str,
        method: str,
        params: dict[str, Any] | None = None,
    ) -> Message:
        message = jsonrpc.request(session.next_id(), method, params)
        session.expect(message)
        started = _now()
        timeout = self.profile.read_timeout
        try:
            with anyio.fail_after(timeout):
                await upstream.send(message)
                return await session.wait(message)
        except TimeoutError:
            self.fail(
                step,
                f"{method} was not answered within {timeout:g} s",
                "the server is slow or stuck: check its logs; raise --read-timeout if it is just slow",
                started,
            )
        except UpstreamError as exc:
            await self._fail_upstream(step, exc, started)

    def _result(self, step: str, method: str, reply: Message, started: float) -> dict[str, Any]:
        error = reply.body.get("error")
        if isinstance(error, dict):
            code, text = error.get("code"), error.get("message", "")
            hint = "the server refused a standard request: check its logs, or report it to its maintainers"
            if method == "initialize":
                hint = (
                    "the server refused the handshake; if it is about the protocol version, the server "
                    "may be too old or too new for this proxy (--protocol selects the era)"
                )
            self.fail(step, f"{method} answered error {code}: {text}", hint, started)
        result = reply.body.get("result")
        return result if isinstance(result, dict) else {}

    async def _handshake(
        self, upstream: Upstream, session: _Session, init: Message, first_sent: bool
    ) -> None:
        started = _now()
        try:
            with anyio.fail_after(self.profile.read_timeout):
                if not first_sent:
                    await upstream.send(init)
                reply = await session.wait(init)
        except TimeoutError:
            self.fail(
                "initialize",
                f"initialize was not answered within {self.profile.read_timeout:g} s",
                "the server accepted the session but does not answer: check its logs; raise "
                "--read-timeout if it is just slow",
                started,
            )
        except UpstreamError as exc:
            await self._fail_upstream("initialize", exc, started)
        result = self._result("initialize", "initialize", reply, started)
        info = result.get("serverInfo") if isinstance(result.get("serverInfo"), dict) else {}
        capabilities = result.get("capabilities") if isinstance(result.get("capabilities"), dict) else {}
        instructions = result.get("instructions")
        first_line = None
        if isinstance(instructions, str) and instructions.strip():
            first_line = instructions.strip().splitlines()[0]
        version = result.get("protocolVersion")
        self.report["server"] = {
            "name": _text_or_none(info.get("name")),
            "version": _text_or_none(info.get("version")),
            "protocol_version": _text_or_none(version),
            "capabilities": capabilities,
            "instructions": first_line,
        }
        name = " ".join(filter(None, (_text_or_none(info.get("name")), _text_or_none(info.get("version")))))
        self.record("initialize", "ok", f"{name or 'unnamed server'}, protocol {version}", started)
        if self.profile.protocol == "modern":
            self.report["notes"].append(
                "protocol: modern is set, but the check runs the initialize handshake (server/discover is "
                "not probed)"
            )
        if version != CHECK_PROTOCOL_VERSION:
            self.report["notes"].append(
                f"the server chose protocol version {version} (the check asked for {CHECK_PROTOCOL_VERSION})"
            )
        started = _now()
        try:
            with anyio.fail_after(self.profile.read_timeout):
                await upstream.send(jsonrpc.notification("notifications/initialized"))
        except TimeoutError:
            self.fail(
                "initialized",
                "notifications/initialized was not accepted in time",
                "check the server's logs",
                started,
            )
        except UpstreamError as exc:
            await self._fail_upstream("initialized", exc, started)

    async def _lists(self, upstream: Upstream, session: _Session) -> None:
        capabilities = (self.report["server"] or {}).get("capabilities") or {}
        for kind in ("tools", "prompts", "resources"):
            if kind not in capabilities:
                self.record(kind, "skipped", f"the server offers no {kind}")
                continue
            started = _now()
            names: list[str] = []
            cursor: str | None = None
            for _page in range(MAX_LIST_PAGES):
                reply = await self._request(
                    upstream, session, kind, f"{kind}/list", {"cursor": cursor} if cursor else None
                )
                result = self._result(kind, f"{kind}/list", reply, started)
                items = result.get(kind)
                for item in items if isinstance(items, list) else ():
                    if isinstance(item, dict):
                        names.append(str(item.get("name") or item.get("uri") or "?"))
                cursor = result.get("nextCursor")
                if not isinstance(cursor, str) or not cursor:
                    break
            self.report["counts"][kind] = len(names)
            if kind == "tools":
                self.report["tools"] = names
            self.record(kind, "ok", _count_text(len(names), kind), started)

    async def _latency(self, upstream: Upstream, session: _Session) -> None:
        started = _now()
        method = "ping"
        samples: list[float] = []
        while len(samples) < PING_COUNT:
            sent = _now()
            reply = await self._request(upstream, session, "ping", method)
            if "error" in reply.body and method == "ping":
                error = reply.body.get("error") or {}
                detail = f"ping answered error {error.get('code')}: {error.get('message')}"
                self.record(
                    "ping",
                    "warning",
                    detail,
                    started,
                    hint="the server does not answer ping: set --ping-interval 0 so the keepalive "
                    "does not take it for a dead session",
                )
                if self.report["counts"]["tools"] is None:
                    return
                method, samples, started = "tools/list", [], _now()
                continue
            self._result("ping", method, reply, started)
            samples.append(_ms_since(sent))
        median = round(statistics.median(samples), 1)
        self.report["latency_ms"] = {"method": method, "samples": samples, "median": median}
        self.record("latency", "ok", f"{method} median {median:g} ms of {PING_COUNT}", started)

    async def _close(self, upstream: Upstream) -> None:
        started = _now()
        had_session = getattr(upstream, "session_id", None) is not None
        await _close_quietly(upstream)
        if _kind(upstream) == "sse":
            detail = "event stream closed"
        elif had_session:
            detail = "session ended with DELETE"
        elif upstream.name == "streamable-http":
            detail = "stateless server: no session to end"
        else:
            detail = "session closed"
        self.record("close", "ok", detail, started)


class _Session:
    """Matches the server's responses to the check's requests, and answers the server's own requests."""

    def __init__(self, task_group: TaskGroup) -> None:
        self._tg = task_group
        self._count = 0
        self._events: dict[JsonId | None, anyio.Event] = {}
        self._replies: dict[JsonId | None, Message] = {}
        self.lost_reason: str | None = None
        self.upstream: Upstream | None = None

    def next_id(self) -> str:
        self._count += 1
        return f"check-{self._count}"

    def expect(self, message: Message) -> None:
        self._events[message.id] = anyio.Event()

    async def deliver(self, message: Message) -> None:
        if message.kind is Kind.RESPONSE and message.id in self._events:
            self._replies[message.id] = message
            self._events[message.id].set()
        elif message.kind is Kind.REQUEST and self.upstream is not None:
            self._tg.start_soon(self._answer, message)

    async def _answer(self, request: Message) -> None:
        assert request.id is not None and self.upstream is not None
        if request.method == "ping":
            reply = jsonrpc.from_obj({"jsonrpc": "2.0", "id": request.id, "result": {}})
        else:
            reply = jsonrpc.error_response(
                request.id, jsonrpc.METHOD_NOT_FOUND, f"{CLIENT_NAME} does not handle {request.method}"
            )
        with anyio.move_on_after(CLOSE_TIMEOUT):
            try:
                await self.upstream.send(reply)
            except UpstreamError:
                pass  # the request being checked reports the session's trouble

    def on_lost(self, reason: str) -> None:
        self.lost_reason = reason
        for event in self._events.values():
            event.set()

    async def wait(self, message: Message) -> Message:
        await self._events[message.id].wait()
        reply = self._replies.pop(message.id, None)
        if reply is None:
            raise SessionLost(f"the server ended the session: {self.lost_reason or 'no reason given'}")
        return reply


async def _wrap_tls(stream: ByteStream, host: str, context: ssl.SSLContext) -> TLSStream:
    return await TLSStream.wrap(stream, hostname=host, ssl_context=context, standard_compatible=False)


async def _close_quietly(upstream: Upstream) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
        await upstream.close()


# --------------------------------------------------------------------------------------------------------
# Small pure helpers


def _kind(upstream: Upstream) -> str:
    """ "sse" or "streamable-http" for an upstream, also when an era bridge wraps it (its name says so)."""
    return "sse" if upstream.name.startswith("sse") else "streamable-http"


def _tried(attempts: list[str]) -> list[dict[str, str]]:
    """Detection's log lines ("KIND URL: REASON") as report entries."""
    entries = []
    for attempt in attempts:
        head, _, reason = attempt.partition(": ")
        kind, _, url = head.partition(" ")
        entries.append({"transport": kind, "url": _clean_urls(url), "result": _clean_urls(reason or attempt)})
    return entries


def _clean_urls(text: str) -> str:
    """`text` with every URL shown without userinfo or query (either may hold a token)."""
    return _URL_IN_TEXT.sub(lambda match: display(match.group(0)), text)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _root_os_error(exc: OSError) -> OSError:
    """The first concrete error under anyio's "All connection attempts failed"."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, BaseExceptionGroup):
            cause = cause.exceptions[0]
        elif isinstance(cause, OSError):
            return cause
        else:
            break
    return exc


def _address_text(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)


def _env_proxy(profile: Profile) -> str | None:
    """The HTTP proxy the client uses for the profile's URL, from HTTP(S)_PROXY/ALL_PROXY and NO_PROXY."""
    if not profile.use_env_proxy:
        return None
    parts = urlsplit(profile.url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme.lower()) or proxies.get("all")
    if not proxy:
        return None
    if "no" in proxies and urllib.request.proxy_bypass_environment(parts.netloc, proxies):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _ca_source(profile: Profile) -> str:
    """Which certificates the client trusts, in words (mirrors `httpclient.ssl_context`)."""
    if not profile.tls_verify:
        return "none: verification is off (tls_verify: false)"
    if profile.ca_file is not None:
        source = profile.sources.get("ca_file")
        return f"ca_file {profile.ca_file}" + (f" (from {source})" if source else "")
    if profile.use_env_proxy and os.environ.get("SSL_CERT_FILE"):
        return f"SSL_CERT_FILE {os.environ['SSL_CERT_FILE']}"
    if profile.use_env_proxy and os.environ.get("SSL_CERT_DIR"):
        return f"SSL_CERT_DIR {os.environ['SSL_CERT_DIR']}"
    if sys.platform in ("win32", "darwin"):
        return "the operating system's trust store"
    paths = ssl.get_default_verify_paths()
    return f"the system CA bundle ({paths.openssl_cafile})"


def _certificate_hint(reason: str, host: str, certificate: Mapping[str, Any], ca_source: str) -> str:
    lower = reason.lower()
    if "hostname mismatch" in lower or "ip address mismatch" in lower:
        names = ", ".join(certificate.get("san") or []) or "other names"
        return f"the certificate is for {names}, not {host}: use a URL with one of those names"
    if "expired" in lower:
        return "the server's certificate has expired: its operator must renew it (the proxy cannot fix this)"
    return (
        f"the certificate is not signed by a CA in {ca_source}: pass the CA certificate (for a "
        "self-signed server, the certificate itself) with --ca-file PATH or ST_PROXY_CA_FILE; "
        "--no-tls-verify only for a test"
    )


def _rdn_text(rdns: Any) -> str | None:
    parts = []
    for rdn in rdns or ():
        for key, value in rdn:
            short = {
                "commonName": "CN",
                "organizationName": "O",
                "organizationalUnitName": "OU",
                "countryName": "C",
                "localityName": "L",
                "stateOrProvinceName": "ST",
            }.get(key, key)
            parts.append(f"{short}={value}")
    return ",".join(parts) or None


def _expiry(not_after: datetime | None) -> dict[str, Any]:
    if not_after is None:
        return {"not_after": None, "days_left": None}
    days_left = (not_after - datetime.now(UTC)).days
    return {"not_after": not_after.isoformat(), "days_left": days_left}


def _certificate_from_dict(decoded: Mapping[str, Any]) -> dict[str, Any]:
    """Subject, issuer, expiry and names of a certificate as `ssl.SSLSocket.getpeercert()` decodes it."""
    not_after = None
    if decoded.get("notAfter"):
        not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notAfter"]), UTC)
    return {
        "subject": _rdn_text(decoded.get("subject")),
        "issuer": _rdn_text(decoded.get("issuer")),
        "san": [str(value) for _kind, value in decoded.get("subjectAltName", ())],
        **_expiry(not_after),
    }


def _certificate_from_der(der: bytes | None) -> dict[str, Any]:
    """The same for a certificate the ssl module would not decode (not verified); needs `cryptography`."""
    empty = {"subject": None, "issuer": None, "san": [], **_expiry(None)}
    if not der:
        return empty
    try:
        from cryptography import x509
    except ImportError:
        return empty
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return empty
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        san = [str(name.value) for name in extension.value]
    except x509.ExtensionNotFound:
        san = []
    return {
        "subject": certificate.subject.rfc4514_string() or None,
        "issuer": certificate.issuer.rfc4514_string() or None,
        "san": san,
        **_expiry(certificate.not_valid_after_utc),
    }


def _hint_for(exc: UpstreamError, profile: Profile) -> str:
    """One line on what to try next for an upstream failure."""
    status = exc.status
    text = exc.reason.lower()
    if status in (401, 403):
        challenge = exc.challenge if isinstance(exc, UpstreamHTTPError) else None
        return _auth_hint(profile, status, challenge)
    if status == 407:
        return "the HTTP proxy wants credentials: put them in HTTPS_PROXY (http://USER:PASSWORD@HOST:PORT)"
    if status == 404:
        return (
            "nothing answers at this path: check the URL's path (Streamable HTTP servers usually serve "
            "/mcp, legacy SSE servers /sse)"
        )
    if status in (400, 405, 406, 415):
        return (
            "the server does not take this transport at this URL: try --transport auto, or the other "
            "transport (--transport sse with the /sse URL, --transport streamable-http with /mcp)"
        )
    if status in (429, 503) and exc.retry_after is not None:
        return f"the server is busy or rate-limiting: try again in {exc.retry_after:g} s"
    if status is not None and status >= 500:
        return "the server failed: check its logs, or try again later"
    if isinstance(exc, detect.NoTransport):
        return (
            "no MCP transport answered: check the URL's path (Streamable HTTP servers usually serve "
            "/mcp, legacy SSE servers /sse) and that it is an MCP server"
        )
    if isinstance(exc, EndpointRefused):
        return (
            "the legacy SSE server announced a message endpoint on another origin: use the URL on the "
            "origin it announces, or ask its operator to fix the endpoint event"
        )
    if isinstance(exc, (SessionExpired, SessionLost, StreamLost)):
        return (
            "the server ended the session early: check its logs (a restart, a crash, or a load balancer "
            "without session affinity)"
        )
    if isinstance(exc, UpstreamUnavailable):
        if "certificate" in text or "ssl" in text:
            return (
                "TLS failed: if the server uses a private CA or a self-signed certificate, pass it with "
                "--ca-file PATH (ST_PROXY_CA_FILE)"
            )
        if "proxy" in text:
            return "the HTTP proxy failed: check HTTPS_PROXY/HTTP_PROXY, or use --no-use-env-proxy"
        if "refused" in text:
            return "nothing listens there: check the host and port in the URL, and that the server is running"
        return "check the host, port and network route (VPN, firewall, HTTPS_PROXY)"
    if "disconnected without sending a response" in text and profile.url.lower().startswith("http://"):
        return (
            "the server closed the connection without an HTTP answer: if it serves HTTPS on this port, "
            "use an https:// URL"
        )
    if "timed out" in text:
        return "the server did not answer in time: check its health; raise --read-timeout if it is just slow"
    return "run the proxy with --log-level debug to see the whole exchange"


def _auth_hint(profile: Profile, status: int, challenge: str | None) -> str:
    configured = next((name for name in profile.headers if name.lower() == "authorization"), None)
    if configured is not None:
        source = profile.sources.get(f"headers.{configured}") or profile.sources.get("headers")
        where = f" (from {source})" if source else ""
        if status == 401:
            return f"the server refused the Authorization header{where}: the token may be wrong or expired"
        return f"the credentials{where} were accepted but lack permission here: check the token's scopes"
    scheme = (challenge or "").split(" ", 1)[0].strip(",") or "Bearer"
    hint = (
        f"the server wants credentials: add --header 'Authorization: {scheme} …', or set it in "
        "ST_PROXY_HEADERS (or ST_PROXY_HEADER_AUTHORIZATION), or in a header_file"
    )
    if challenge and "resource_metadata" in challenge:
        hint += (
            "; the server uses OAuth: get a token from its authorization server (this proxy runs no "
            "OAuth flow)"
        )
    return hint


def _aggregate(profiles: tuple[Profile, ...], reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    """With several profiles: each tool as the aggregate exposes it (`alias__tool`), clashes, long names."""
    if len(profiles) < 2:
        return None
    owners: dict[str, list[str]] = {}
    exposed: list[str] = []
    shortened: list[str] = []
    for profile, report in zip(profiles, reports, strict=True):
        for tool in report["tools"]:
            owners.setdefault(tool, []).append(profile.name)
            name = f"{profile.alias}__{tool}"
            exposed.append(name)
            if len(name) > profile.max_name_length:
                shortened.append(name)
    return {
        "tools": len(exposed),
        "exposed_names": exposed,
        "shortened": shortened,
        "duplicates": {tool: names for tool, names in owners.items() if len(names) > 1},
    }


# --------------------------------------------------------------------------------------------------------
# The human report

_STATUS_MARK = {"ok": "ok", "failed": "FAIL", "skipped": "skip", "warning": "warn"}


def render_text(document: Mapping[str, Any]) -> str:
    """The report for people: one block per profile, then a summary line."""
    lines: list[str] = []
    for report in document["profiles"]:
        lines.extend(_render_profile(report))
        lines.append("")
    aggregate = document.get("aggregate")
    if aggregate:
        lines.append(f"aggregate: {aggregate['tools']} tools as <prefix>__<tool>")
        lines.extend(aggregate_summary(aggregate))
        lines.append("")
    reports = document["profiles"]
    working = sum(1 for report in reports if report["ok"])
    verdict = "all OK" if document["ok"] else "PROBLEMS FOUND"
    lines.append(
        f"{PROG} {document['version']} --check: {working} of {len(reports)} profile"
        f"{'s' if len(reports) != 1 else ''} working: {verdict}"
    )
    return "\n".join(lines) + "\n"


#: Names listed in one summary line before "… (+N more)".
SUMMARY_NAMES = 8


def aggregate_summary(aggregate: Mapping[str, Any]) -> list[str]:
    """At most one line for the tool names several profiles share, one for the names to be shortened."""
    lines = []
    shared: Mapping[str, list[str]] = aggregate["duplicates"]
    if shared:
        owners = sorted({owner for names in shared.values() for owner in names})
        count = len(shared)
        lines.append(
            f"  {count} tool name{'s are' if count != 1 else ' is'} offered by more than one profile "
            f"({', '.join(owners)}); the prefixes keep them apart: {_listed(list(shared))}"
        )
    shortened: list[str] = aggregate["shortened"]
    if shortened:
        count = len(shortened)
        lines.append(
            f"  {count} name{'s are' if count != 1 else ' is'} longer than max_name_length and will be "
            f"shortened: {_listed(shortened)}"
        )
    return lines


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:SUMMARY_NAMES])
    return shown + (f", … (+{len(names) - SUMMARY_NAMES} more)" if len(names) > SUMMARY_NAMES else "")


def _render_profile(report: Mapping[str, Any]) -> list[str]:
    error = report["error"]
    state = "OK" if report["ok"] else f"FAILED at {error['step'] if error else '?'}"
    lines = [f"profile {report['profile']}: {state}"]
    source = f"  (from {report['url_source']})" if report["url_source"] else ""
    lines.append(f"  {'url':<13}{report['url']}{source}")
    lines.append(f"  {'proxy':<13}{report['proxy'] or 'none'}")
    for entry in report["steps"]:
        elapsed = f"  [{entry['elapsed_ms']:g} ms]" if entry["elapsed_ms"] is not None else ""
        mark = _STATUS_MARK.get(entry["status"], entry["status"])
        lines.append(f"  {mark:<5}{entry['step']:<12}{entry['detail']}{elapsed}")
        if entry["step"] == "transport" and report["transport"]:
            for attempt in _failed_attempts(report["transport"]):
                lines.append(f"  {'':<17}tried {attempt['transport']} {attempt['url']}: {attempt['result']}")
        if entry["hint"] and entry["status"] != "failed":
            lines.append(f"  {'':<17}hint: {entry['hint']}")
    server = report["server"]
    if server:
        name = " ".join(filter(None, (server["name"], server["version"]))) or "unnamed"
        lines.append(f"  {'server':<13}{name} (protocol {server['protocol_version']})")
        lines.append(f"  {'capabilities':<13}{_capabilities_text(server['capabilities']) or 'none'}")
        if server["instructions"]:
            lines.append(f"  {'instructions':<13}{server['instructions']}")
    counts = report["counts"]
    if any(value is not None for value in counts.values()):
        shown = ", ".join(_count_text(value, kind) for kind, value in counts.items() if value is not None)
        lines.append(f"  {'offers':<13}{shown}")
    if report["tools"]:
        names = ", ".join(report["tools"][:SHOWN_NAMES])
        more = f", … (+{len(report['tools']) - SHOWN_NAMES})" if len(report["tools"]) > SHOWN_NAMES else ""
        lines.append(f"  {'tools':<13}{names}{more}")
    latency = report["latency_ms"]
    if latency:
        samples = ", ".join(f"{sample:g}" for sample in latency["samples"])
        lines.append(f"  {'latency':<13}{latency['method']} median {latency['median']:g} ms ({samples})")
    for note in report["notes"]:
        lines.append(f"  {'note':<13}{note}")
    if error:  # its message is the failed step's line above
        if error["www_authenticate"]:
            lines.append(f"  {'challenge':<13}WWW-Authenticate: {error['www_authenticate']}")
        lines.append(f"  {'try':<13}{error['hint']}")
    return lines


def _count_text(count: int, kind: str) -> str:
    return f"{count} {kind if count != 1 else kind.removesuffix('s')}"


def _failed_attempts(transport: Mapping[str, Any]) -> list[dict[str, str]]:
    tried = list(transport["tried"])
    return tried[:-1] if transport["name"] else tried


def _capabilities_text(capabilities: Mapping[str, Any]) -> str:
    parts = []
    for name, value in capabilities.items():
        flags = [key for key, flag in value.items() if flag is True] if isinstance(value, dict) else []
        parts.append(f"{name}({', '.join(flags)})" if flags else name)
    return ", ".join(parts)
