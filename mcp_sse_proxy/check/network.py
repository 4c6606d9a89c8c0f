"""Reaching the server before HTTP: DNS, TCP (directly or to the environment's HTTP proxy), then TLS."""

from __future__ import annotations

import os
import socket
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import anyio
from anyio.abc import ByteStream, SocketAttribute

from ..config.model import Profile
from ..protocol.urls import display
from .report import CheckReport, now
from .tls import handshake


async def reach(profile: Profile, report: CheckReport) -> None:
    """Resolve, connect and (for https without a proxy) shake hands; each step recorded, the first failure raises."""
    parts = urlsplit(profile.url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    host = parts.hostname
    if scheme not in ("http", "https") or not host or port is None:
        report.fail(
            "url",
            f"{display(profile.url)} is not a usable http(s) URL",
            "give the server's full URL, e.g. https://mcp.example.com/mcp or http://127.0.0.1:8000/sse",
        )
    _check_cleartext(profile, report)
    proxy = env_proxy(profile)
    dial_host, dial_port = host, port
    if proxy is not None:
        report.data["proxy"] = display(proxy)
        proxy_parts = urlsplit(proxy)
        dial_host = proxy_parts.hostname or ""
        dial_port = proxy_parts.port or (443 if proxy_parts.scheme == "https" else 80)
    await _resolve(profile, report, dial_host, dial_port, via_proxy=proxy is not None)
    stream = await _connect(profile, report, dial_host, dial_port, via_proxy=proxy is not None)
    try:
        if scheme != "https":
            report.record("tls", "skipped", "plain http: no TLS")
        elif proxy is not None:
            report.record(
                "tls",
                "skipped",
                f"tunnelled through the proxy {display(proxy)}: the MCP handshake below checks it",
            )
        else:
            stream = await handshake(profile, report, stream, host, port)
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


def _check_cleartext(profile: Profile, report: CheckReport) -> None:
    """Before anything is sent: a warning (or, if so configured, a failure) when headers, OAuth tokens or
    forwarded values would cross the network in clear (plain http:// to a host that is not loopback)."""
    from ..config.safety import cleartext_credentials

    cleartext = cleartext_credentials(profile, os.environ)
    if cleartext is None:
        return
    hint = "use the server's https:// URL"
    if profile.cleartext_credentials == "error":
        report.fail("url", f"{cleartext}; refused", hint)
    report.record("url", "warning", cleartext, hint=hint)


async def _resolve(profile: Profile, report: CheckReport, host: str, port: int, *, via_proxy: bool) -> None:
    started = now()
    what = "the HTTP proxy's host" if via_proxy else "the host"
    try:
        with anyio.fail_after(profile.connect_timeout):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        report.fail(
            "dns",
            f"resolving {host} took longer than {profile.connect_timeout:g} s",
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
        report.fail("dns", f"cannot resolve {host}: {reason}", hint, started)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    report.data["dns"] = {"host": host, "port": port, "addresses": addresses, "via_proxy": via_proxy}
    shown = ", ".join(addresses[:4]) + (f" (+{len(addresses) - 4})" if len(addresses) > 4 else "")
    label = "proxy " if via_proxy else ""
    report.record("dns", "ok", f"{label}{host} -> {shown}", started)


async def _connect(
    profile: Profile, report: CheckReport, host: str, port: int, *, via_proxy: bool
) -> ByteStream:
    started = now()
    timeout = profile.connect_timeout
    try:
        with anyio.fail_after(timeout):
            stream = await anyio.connect_tcp(host, port)
    except TimeoutError:
        report.fail(
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
        report.fail("tcp", f"cannot connect to {host}:{port}: {reason}", hint, started)
    remote = stream.extra(SocketAttribute.remote_address, None)
    address = _address_text(remote) if remote is not None else f"{host}:{port}"
    report.data["tcp"] = {"address": address, "via_proxy": via_proxy}
    report.record("tcp", "ok", f"connected to {'the proxy at ' if via_proxy else ''}{address}", started)
    return stream


def env_proxy(profile: Profile) -> str | None:
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
