"""The terminal actions `--login`, `--logout` and `--auth-status` for the selected profiles.

`--login` asks the server anonymously for its challenge, then runs the same job the proxy runs (lock,
refresh when a refresh token is stored, else the browser sign-in), printing the sign-in URL so it works
over SSH too. Nothing printed here ever holds a token value: status lines come from `TokenRecord.summary`.
"""

from __future__ import annotations

import json
import time
from typing import TextIO

import anyio
import httpx2

from ..config.model import AppConfig, Profile
from ..protocol.urls import display
from . import uses_oauth
from .bearer import Job, Trigger
from .errors import SignInError
from .keys import canonical_resource, store_key
from .store import TokenStore

EXIT_OK = 0
EXIT_FAILURE = 1
PROBE_TIMEOUT = 30.0

_PROBE = {
    "jsonrpc": "2.0",
    "id": "mcp-sse-proxy-login",
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "mcp-sse-proxy", "version": "login"},
    },
}


def _store(profile: Profile) -> tuple[TokenStore, str]:
    resource = canonical_resource(profile.url)
    return TokenStore(preference=profile.oauth_store), store_key(resource, profile.oauth_client_id)


def login(config: AppConfig, out: TextIO) -> int:
    """Sign in to each selected profile that uses OAuth; 0 when every one succeeded."""
    status = EXIT_OK
    for profile in config.profiles:
        if not uses_oauth(profile):
            out.write(f"{profile.name}: sign-in is off (auth: none, or a static Authorization header)\n")
            continue
        try:
            message = _login_one(profile, out)
        except SignInError as exc:
            out.write(f"{profile.name}: {exc.reason}\n")
            status = EXIT_FAILURE
            continue
        out.write(f"{profile.name}: {message}\n")
    return status


def _login_one(profile: Profile, out: TextIO) -> str:
    store, key = _store(profile)
    trigger = anyio.run(_probe, profile)
    if trigger is None:
        return f"{display(profile.url)} does not ask for sign-in"
    existing = store.load(key)

    def show(url: str) -> None:
        out.write(f"Open this URL in a browser to sign in to {display(profile.url)}:\n  {url}\n")
        out.flush()

    def show_code(uri: str, complete: str | None, user_code: str) -> None:
        out.write(f"To sign in to {display(profile.url)}, open {uri} and enter the code {user_code}\n")
        if complete:
            out.write(f"  (or open {complete})\n")
        out.flush()

    job = Job(
        profile,
        store,
        key,
        canonical_resource(profile.url),
        trigger,
        "login",
        existing.access_token if existing is not None else None,
        True,
        on_url=show,
        on_device=show_code,
    )
    job.run()
    if job.error is not None:
        if isinstance(job.error, SignInError):
            raise job.error
        raise SignInError(f"sign-in failed: {job.error or type(job.error).__name__}")
    assert job.record is not None
    return "signed in; " + _describe(job.record.summary())


async def _probe(profile: Profile) -> Trigger | None:
    """The server's answer to an anonymous request, when it is a challenge (None when it needs no sign-in)."""
    from ..httpclient import build_client

    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    body = json.dumps(_PROBE).encode()
    try:
        async with build_client(profile, sign_in="off") as client:
            with anyio.fail_after(PROBE_TIMEOUT):
                request = client.build_request("POST", profile.url, content=body, headers=headers)
                response = await client.send(request, stream=True)
                try:
                    if response.status_code in (400, 404, 405):
                        await response.aclose()
                        request = client.build_request(
                            "GET", profile.url, headers={"Accept": "text/event-stream"}
                        )
                        response = await client.send(request, stream=True)
                    if response.status_code not in (401, 403):
                        return None
                    await response.aread()
                    return Trigger.of(request, response)
                finally:
                    await response.aclose()
    except (httpx2.HTTPError, TimeoutError) as exc:
        raise SignInError(f"cannot reach {display(profile.url)}: {type(exc).__name__}: {exc}") from None


def logout(config: AppConfig, out: TextIO) -> int:
    """Forget the stored tokens (and registration) of each selected profile."""
    for profile in config.profiles:
        store, key = _store(profile)
        forgotten = store.delete(key)
        out.write(f"{profile.name}: {'signed out' if forgotten else 'nothing stored'}\n")
    return EXIT_OK


def auth_status(config: AppConfig, out: TextIO) -> int:
    """One line per selected profile: what is stored (issuer, scopes, expiry), never a token."""
    for profile in config.profiles:
        out.write(f"{profile.name}: {status_line(profile)}\n")
    return EXIT_OK


def status_line(profile: Profile) -> str:
    """The sign-in state of `profile` in words (for `--auth-status` and `--check`)."""
    if not uses_oauth(profile):
        return "sign-in off"
    store, key = _store(profile)
    summary = store.summary(key)
    if summary is None or not summary.get("has_access_token"):
        return "sign-in needed"
    return _describe(summary)


def _describe(summary: dict[str, object], now: float | None = None) -> str:
    parts = [f"issuer {summary.get('issuer') or 'unknown'}"]
    parts.append(f"scopes {summary.get('scope') or '(none)'}")
    expires_at = summary.get("expires_at")
    if isinstance(expires_at, int | float):
        left = expires_at - (time.time() if now is None else now)
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires_at))
        parts.append(f"expires {when} ({_duration(left)})")
    else:
        parts.append("no expiry given")
    parts.append("refreshable" if summary.get("has_refresh_token") else "no refresh token")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "expired"
    if seconds < 120:
        return f"in {seconds:.0f} s"
    if seconds < 7200:
        return f"in {seconds / 60:.0f} min"
    return f"in {seconds / 3600:.1f} h"


def run_action(action: str, config: AppConfig, out: TextIO) -> int:
    """Dispatch one of `login`, `logout`, `auth-status` (the CLI's only entry point here)."""
    if action == "login":
        return login(config, out)
    if action == "logout":
        return logout(config, out)
    return auth_status(config, out)
