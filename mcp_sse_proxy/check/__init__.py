"""`--check`: reach each selected profile's server the way the relay does, and report every step.

A check resolves the host, opens a TCP connection, shakes hands over TLS with the relay's TLS context,
detects the transport with the relay's own `transports.detect.connect` and HTTP client, runs the MCP
handshake and a few read-only requests, measures `ping` latency and ends the session. Every failure carries
one `hint` line saying what to try next. Secret values never appear in the output.

Modules: `report` (the report and its steps, masking), `network` (DNS, TCP), `tls` and `certificates`,
`conversation` and `replies` (the MCP exchange), `hints`, `render` (JSON document, text), `run` (all
profiles in parallel).
"""

from .render import build_document, render_text
from .report import mask_secrets, profile_secrets
from .run import EXIT_FAILURE, EXIT_OK, check_profile, run_check

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "build_document",
    "check_profile",
    "mask_secrets",
    "profile_secrets",
    "render_text",
    "run_check",
]
