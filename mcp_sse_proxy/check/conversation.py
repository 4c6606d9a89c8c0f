"""The MCP part of a check: detection with the relay's own code, the handshake, the lists, ping, the close."""

from __future__ import annotations

import ssl
import statistics
from dataclasses import replace
from typing import Any, NoReturn

import anyio
import httpx2
from anyio.abc import TaskGroup

from .. import __version__
from ..config.model import Profile
from ..errors import UpstreamError, UpstreamHTTPError
from ..httpclient import build_client
from ..protocol import messages as jsonrpc
from ..protocol.messages import Message
from ..protocol.urls import candidate_urls, display
from ..transports import detect
from ..transports.base import Upstream
from .hints import hint_for
from .render import count_text
from .replies import CLIENT_NAME, Replies
from .report import CheckReport, clean_urls, ms_since, now

CHECK_PROTOCOL_VERSION = "2025-11-25"
PING_COUNT = 3
MAX_LIST_PAGES = 50
CLOSE_TIMEOUT = 5.0


async def converse(profile: Profile, report: CheckReport) -> None:
    """Run the MCP conversation through the relay's own HTTP client; the first failing step raises."""
    try:
        client = build_client(profile)
    except (OSError, ssl.SSLError, ValueError) as exc:
        report.fail(
            "transport",
            f"cannot set up the HTTP client: {exc}",
            "check ca_file, client_cert and client_key, and the HTTP(S)_PROXY variables",
        )
    async with client, anyio.create_task_group() as tg:
        try:
            await _Conversation(profile, report, client, tg).run()
        finally:
            tg.cancel_scope.cancel()


def _attempt_entry(attempt: detect.Attempt) -> dict[str, str]:
    result = clean_urls(attempt.reason) if attempt.reason is not None else "answered"
    return {"transport": attempt.transport, "url": display(attempt.url), "result": result}


def _detection_budget(profile: Profile) -> float:
    tries = len(candidate_urls(profile.url)) if profile.transport == "auto" else 1
    return tries * profile.connect_timeout + profile.read_timeout


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def _close_quietly(upstream: Upstream) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
        await upstream.close()


class _Conversation:
    def __init__(self, profile: Profile, report: CheckReport, client: httpx2.AsyncClient, tg: TaskGroup):
        self.profile = profile
        self.report = report
        self.client = client
        self.tg = tg
        self.replies = Replies(tg)
        #: The wire transport detection chose ("sse" or "streamable-http", also under a bridge).
        self.kind = ""

    async def run(self) -> None:
        upstream, first_sent, init = await self._detect()
        try:
            await self._handshake(upstream, init, first_sent)
            await self._lists(upstream)
            await self._latency(upstream)
        finally:
            await self._close(upstream)

    def _initialize(self, replies: Replies) -> Message:
        client_info = {"name": CLIENT_NAME, "version": __version__}
        params = {"protocolVersion": CHECK_PROTOCOL_VERSION, "capabilities": {}, "clientInfo": client_info}
        return replies.request("initialize", params)

    async def _detect(self) -> tuple[Upstream, bool, Message]:
        init = self._initialize(self.replies)
        attempts: list[detect.Attempt] = []
        started = now()
        budget = _detection_budget(self.profile)
        try:
            with anyio.fail_after(budget):
                upstream, first_sent = await detect.connect(
                    self.profile,
                    self.client,
                    self.tg,
                    self.replies.deliver,
                    self.replies.on_lost,
                    init,
                    on_attempt=attempts.append,
                )
        except TimeoutError:
            self.report.data["transport"] = {"name": None, "url": None, "tried": self._tried(attempts)}
            self.report.fail(
                "transport",
                f"no transport answered within {budget:g} s",
                "the server accepts connections but does not answer: check that the URL is its MCP "
                "endpoint and that it is healthy; for a slow server raise --read-timeout",
                started,
            )
        except UpstreamError as exc:
            self.report.data["transport"] = {"name": None, "url": None, "tried": self._tried(attempts)}
            alternative = await self._other_transport()
            self._fail_upstream("transport", exc, started, alternative=alternative)
        self.replies.upstream = upstream
        self.kind = attempts[-1].transport
        tried = self._tried(attempts)
        self.report.data["transport"] = {"name": upstream.name, "url": display(upstream.url), "tried": tried}
        detail = f"{upstream.name} at {display(upstream.url)}"
        if len(tried) > 1:
            detail += f" (after {len(tried) - 1} other attempt{'s' if len(tried) > 2 else ''})"
        self.report.record("transport", "ok", detail, started)
        if self.kind == "sse" and self.profile.transport == "auto":
            self.report.note(
                f"the server speaks legacy HTTP+SSE (2024-11-05): --transport sse with the URL "
                f"{display(upstream.url)} skips detection at every start"
            )
        elif upstream.url != self.profile.url:
            self.report.note(
                f"the server answered at {display(upstream.url)}: use that URL to skip detection at every "
                "start"
            )
        return upstream, first_sent, init

    @staticmethod
    def _tried(attempts: list[detect.Attempt]) -> list[dict[str, str]]:
        return [_attempt_entry(attempt) for attempt in attempts]

    async def _other_transport(self) -> str | None:
        """With a forced transport that failed: what auto-detection finds at the same URL, as a hint."""
        if self.profile.transport == "auto":
            return None
        probe = replace(self.profile, transport="auto")
        replies = Replies(self.tg)
        init = self._initialize(replies)
        attempts: list[detect.Attempt] = []
        try:
            with anyio.fail_after(_detection_budget(probe)):
                upstream, _ = await detect.connect(
                    probe, self.client, self.tg, replies.deliver, replies.on_lost, init, attempts.append
                )
        except (UpstreamError, TimeoutError):
            return None
        try:
            kind = attempts[-1].transport
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

    def _fail_upstream(
        self, step: str, exc: UpstreamError, started: float, *, alternative: str | None = None
    ) -> NoReturn:
        message = clean_urls(exc.reason)
        challenge = exc.challenge if isinstance(exc, UpstreamHTTPError) else None
        hint = alternative or hint_for(exc, self.profile)
        if isinstance(exc, detect.NoTransport) and exc.error_message is not None:
            error = exc.error_message.body.get("error") or {}
            message += f"; the server said: {error.get('message', '')}".rstrip(": ")
        self.report.fail(step, message, hint, started, status=exc.status, challenge=challenge)

    async def _request(
        self, upstream: Upstream, step: str, method: str, params: dict[str, Any] | None = None
    ) -> Message:
        message = self.replies.request(method, params)
        started = now()
        timeout = self.profile.read_timeout
        try:
            with anyio.fail_after(timeout):
                await upstream.send(message)
                return await self.replies.wait(message)
        except TimeoutError:
            self.report.fail(
                step,
                f"{method} was not answered within {timeout:g} s",
                "the server is slow or stuck: check its logs; raise --read-timeout if it is just slow",
                started,
            )
        except UpstreamError as exc:
            self._fail_upstream(step, exc, started)

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
            self.report.fail(step, f"{method} answered error {code}: {text}", hint, started)
        result = reply.body.get("result")
        return result if isinstance(result, dict) else {}

    async def _handshake(self, upstream: Upstream, init: Message, first_sent: bool) -> None:
        started = now()
        try:
            with anyio.fail_after(self.profile.read_timeout):
                if not first_sent:
                    await upstream.send(init)
                reply = await self.replies.wait(init)
        except TimeoutError:
            self.report.fail(
                "initialize",
                f"initialize was not answered within {self.profile.read_timeout:g} s",
                "the server accepted the session but does not answer: check its logs; raise "
                "--read-timeout if it is just slow",
                started,
            )
        except UpstreamError as exc:
            self._fail_upstream("initialize", exc, started)
        result = self._result("initialize", "initialize", reply, started)
        self._record_server(result, started)
        started = now()
        try:
            with anyio.fail_after(self.profile.read_timeout):
                await upstream.send(jsonrpc.notification("notifications/initialized"))
        except TimeoutError:
            self.report.fail(
                "initialized",
                "notifications/initialized was not accepted in time",
                "check the server's logs",
                started,
            )
        except UpstreamError as exc:
            self._fail_upstream("initialized", exc, started)

    def _record_server(self, result: dict[str, Any], started: float) -> None:
        info = result.get("serverInfo") if isinstance(result.get("serverInfo"), dict) else {}
        capabilities = result.get("capabilities") if isinstance(result.get("capabilities"), dict) else {}
        instructions = result.get("instructions")
        first_line = None
        if isinstance(instructions, str) and instructions.strip():
            first_line = instructions.strip().splitlines()[0]
        version = result.get("protocolVersion")
        name, server_version = _text_or_none(info.get("name")), _text_or_none(info.get("version"))
        self.report.data["server"] = {
            "name": name,
            "version": server_version,
            "protocol_version": _text_or_none(version),
            "capabilities": capabilities,
            "instructions": first_line,
        }
        label = " ".join(filter(None, (name, server_version)))
        self.report.record("initialize", "ok", f"{label or 'unnamed server'}, protocol {version}", started)
        if self.profile.protocol == "modern":
            self.report.note(
                "protocol: modern is set, but the check runs the initialize handshake (server/discover is "
                "not probed)"
            )
        if version != CHECK_PROTOCOL_VERSION:
            self.report.note(
                f"the server chose protocol version {version} (the check asked for {CHECK_PROTOCOL_VERSION})"
            )

    async def _lists(self, upstream: Upstream) -> None:
        capabilities = (self.report.data["server"] or {}).get("capabilities") or {}
        for kind in ("tools", "prompts", "resources"):
            if kind not in capabilities:
                self.report.record(kind, "skipped", f"the server offers no {kind}")
                continue
            started = now()
            names: list[str] = []
            cursor: str | None = None
            for _page in range(MAX_LIST_PAGES):
                params = {"cursor": cursor} if cursor else None
                reply = await self._request(upstream, kind, f"{kind}/list", params)
                result = self._result(kind, f"{kind}/list", reply, started)
                items = result.get(kind)
                for item in items if isinstance(items, list) else ():
                    if isinstance(item, dict):
                        names.append(str(item.get("name") or item.get("uri") or "?"))
                cursor = result.get("nextCursor")
                if not isinstance(cursor, str) or not cursor:
                    break
            self.report.data["counts"][kind] = len(names)
            if kind == "tools":
                self.report.data["tools"] = names
            self.report.record(kind, "ok", count_text(len(names), kind), started)

    async def _latency(self, upstream: Upstream) -> None:
        started = now()
        method = "ping"
        samples: list[float] = []
        while len(samples) < PING_COUNT:
            sent = now()
            reply = await self._request(upstream, "ping", method)
            if "error" in reply.body and method == "ping":
                error = reply.body.get("error") or {}
                detail = f"ping answered error {error.get('code')}: {error.get('message')}"
                self.report.record(
                    "ping",
                    "warning",
                    detail,
                    started,
                    hint="the server does not answer ping: set --ping-interval 0 so the keepalive "
                    "does not take it for a dead session",
                )
                if self.report.data["counts"]["tools"] is None:
                    return
                method, samples, started = "tools/list", [], now()
                continue
            self._result("ping", method, reply, started)
            samples.append(ms_since(sent))
        median = round(statistics.median(samples), 1)
        self.report.data["latency_ms"] = {"method": method, "samples": samples, "median": median}
        self.report.record("latency", "ok", f"{method} median {median:g} ms of {PING_COUNT}", started)

    async def _close(self, upstream: Upstream) -> None:
        started = now()
        # Display only: whether a Streamable HTTP session existed decides which words the step shows.
        had_session = getattr(upstream, "session_id", None) is not None
        await _close_quietly(upstream)
        if self.kind == "sse":
            detail = "event stream closed"
        elif had_session:
            detail = "session ended with DELETE"
        elif upstream.name == "streamable-http":
            detail = "stateless server: no session to end"
        else:
            detail = "session closed"
        self.report.record("close", "ok", detail, started)
