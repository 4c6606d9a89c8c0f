"""Frozen configuration objects consumed by the rest of the proxy.

The loader (`config.load`) builds these once at start-up from YAML profiles, `ST_PROXY_*` environment
variables and CLI flags; everything after that reads plain attributes and never re-parses strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

TransportName = Literal["auto", "sse", "streamable-http"]
ProtocolEra = Literal["auto", "modern", "handshake"]
AuthMode = Literal["auto", "oauth", "none"]
TokenStoreName = Literal["auto", "keyring", "file"]

MIB = 1024 * 1024
#: How long an aggregate's initialize waits for its profiles to join (the default of `aggregate_grace`).
AGGREGATE_GRACE = 2.0


@dataclass(frozen=True, slots=True)
class Profile:
    """One upstream server and how to reach it: the settings of one relay."""

    name: str
    url: str
    transport: TransportName = "auto"
    protocol: ProtocolEra = "auto"
    #: Static headers sent on every upstream request (GET, POST, DELETE); values may be secrets.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Seconds without upstream traffic before a keepalive `ping`; 0 disables it.
    ping_interval: float = 30.0
    connect_timeout: float = 10.0
    #: Idle read limit for short upstream exchanges (202 replies, endpoint event, handshake).
    read_timeout: float = 60.0
    #: Limit for one client request, reset by each progress notification for it.
    request_timeout: float = 600.0
    #: How long a client request waits for a (re)connecting upstream before it is answered with an error.
    queue_timeout: float = 10.0
    #: 0 means retry forever.
    reconnect_attempts: int = 0
    reconnect_initial_backoff: float = 0.25
    reconnect_max_backoff: float = 5.0
    tls_verify: bool = True
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    #: Honour HTTP_PROXY / HTTPS_PROXY / NO_PROXY from the environment.
    use_env_proxy: bool = True
    #: Which redirects are followed ("same-origin" or "same-site"); any other is refused.
    redirects: str = "same-origin"
    #: "warn" or "error" when credentials would go over plain http:// to a host that is not loopback.
    cleartext_credentials: str = "warn"
    #: Environment variable name prefixes forwarded into `tools/call` `arguments.env`.
    env_prefixes: tuple[str, ...] = ()
    include_tools: tuple[str, ...] = ()
    exclude_tools: tuple[str, ...] = ()
    max_message_size: int = 64 * MIB
    max_concurrency: int = 64
    #: Alias used when several profiles are aggregated (`alias__tool`).
    prefix: str | None = None
    lazy: bool = False
    max_name_length: int = 64
    #: Aggregation (several profiles): how long initialize waits for profiles, and merged-list page size.
    aggregate_grace: float = AGGREGATE_GRACE
    page_size: int = 0
    #: The file the headers above were partly read from (already applied to `headers`); for --print-config.
    header_file: Path | None = None
    #: Sign-in (OAuth 2.1 as the MCP authorization spec describes); see `mcp_sse_proxy.auth`.
    auth: AuthMode = "auto"
    oauth_client_id: str | None = None
    #: A secret: masked by the redaction step like header values.
    oauth_client_secret: str | None = None
    oauth_client_secret_file: Path | None = None
    #: A Client ID Metadata Document URL (HTTPS), the client id where the authorization server takes one.
    oauth_client_metadata_url: str | None = None
    oauth_scopes: tuple[str, ...] = ()
    oauth_resource: bool = True
    oauth_callback_port: int | None = None
    #: Extra authorization request parameters, each "name=value".
    oauth_authorize_params: tuple[str, ...] = ()
    oauth_signin_wait: float = 45.0
    oauth_open_browser: bool = True
    oauth_store: TokenStoreName = "auto"
    #: The environment variables the header values name as `${VAR}` (the client must provide them).
    header_variables: tuple[str, ...] = ()
    #: Where each value came from, e.g. {"url": "env ST_PROXY_SSE_URL"}; for --print-config and errors.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def alias(self) -> str:
        return self.prefix or self.name


#: Logging settings: schema key → `LogSettings` attribute.
LOG_KEYS = {
    "log_level": "level",
    "log_file": "log_file",
    "debug_enabled": "debug_enabled",
    "debug_filename": "debug_filename",
    "debug_http": "debug_http",
    "trace_file": "trace_file",
    "trace_max_payload": "trace_max_payload",
}


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Process-wide logging: stderr level, the optional log, debug log and trace files."""

    level: str = "info"
    log_file: Path | None = None
    debug_enabled: bool = False
    debug_filename: Path | None = None
    #: Whether the HTTP library's own lines (httpx2, httpcore2) go to the debug log too.
    debug_http: bool = False
    #: JSON Lines record of every message (see `trace.Recorder`).
    trace_file: Path | None = None
    #: Longest message kept whole in the trace and the debug log.
    trace_max_payload: int = 4096
    #: Where each value came from (see `Profile.sources`).
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class AppConfig:
    """The whole effective configuration: the selected profiles in selection order and logging."""

    profiles: tuple[Profile, ...]
    logging: LogSettings = field(default_factory=LogSettings)
    #: Secret values (header values, forwarded env values) that every log line must mask.
    secrets: frozenset[str] = frozenset()
