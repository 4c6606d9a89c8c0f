"""Which values of the loaded profiles are secrets: what the redaction step masks in every log line,
error and printed configuration. Pure functions of the profiles and the environment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mcp_sse_proxy.config.model import Profile


def config_secrets(profiles: Iterable[Profile], environ: Mapping[str, str]) -> frozenset[str]:
    """Header values (and the credential part after an auth scheme), forwarded env values, the OAuth client
    secret, URL userinfo and query values."""
    found: set[str] = set()
    for profile in profiles:
        found.update(header_secrets(profile.headers.values()))
        for env_name, env_value in environ.items():
            if any(env_name.startswith(prefix) for prefix in profile.env_prefixes):
                found.add(env_value)
        if profile.oauth_client_secret:
            found.add(profile.oauth_client_secret)
        found.update(url_secrets(profile.url))
    return frozenset(secret for secret in found if secret)


def header_secrets(values: Iterable[str]) -> set[str]:
    """Each header value, and the credential after its auth scheme (``Bearer <token>`` → the token too)."""
    found: set[str] = set()
    for value in values:
        found.add(value)
        scheme, _, credential = value.partition(" ")
        if credential.strip() and scheme.isalpha():
            found.add(credential.strip())
    return {value for value in found if value}


def url_secrets(url: str) -> set[str]:
    """The parts of a URL that may hold a token: user name, password and every query value."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        found = {parts.username or "", parts.password or ""}
    except ValueError:
        return set()
    found.update(value for _, value in parse_qsl(parts.query, keep_blank_values=False))
    found.update(raw.partition("=")[2] for raw in parts.query.split("&"))  # as written, before decoding
    return {value for value in found if value}
