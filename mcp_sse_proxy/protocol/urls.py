"""URL rules: resolving a legacy SSE endpoint and refusing one on another origin."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit, urlunsplit

from ..errors import EndpointRefused


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def resolve_endpoint(sse_url: str, endpoint: str) -> str:
    """The absolute URL of an `endpoint` event's data, which must stay on the SSE URL's origin."""
    if not endpoint:
        raise EndpointRefused("the server sent an empty endpoint event")
    try:
        absolute = urljoin(sse_url, endpoint)
        same_origin = origin(absolute) == origin(sse_url)
    except ValueError as exc:
        raise EndpointRefused(f"the server announced a malformed message endpoint ({exc})") from None
    if not same_origin:
        raise EndpointRefused(
            f"the server announced a message endpoint on another origin ({display(absolute)}); refused, since our "
            f"requests, headers and forwarded values would go there"
        )
    return absolute


def candidate_urls(url: str) -> list[tuple[str, str]]:
    """(transport, url) pairs that auto-detection tries, in order.

    A URL with no path (the 0.1.4 README shows `--base-url http://HOST:8000`) tries `/mcp`, then `/sse`,
    then the URL itself; a path ending in `/sse` tries the legacy transport first.
    """
    parts = urlsplit(url)
    if parts.path in ("", "/"):

        def at(path: str) -> str:
            return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))

        return [
            ("streamable-http", at("/mcp")),
            ("sse", at("/sse")),
            ("streamable-http", url),
            ("sse", url),
        ]
    if parts.path.rstrip("/").endswith("/sse"):
        return [("sse", url), ("streamable-http", url)]
    return [("streamable-http", url), ("sse", url)]


def display(url: str) -> str:
    """A URL fit for messages and logs: no userinfo, no query (either may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"
