"""The redirect policy: which redirects the proxy follows, decided from two URLs alone (no I/O).

A redirect that is followed carries every configured header and, for 307/308, the request body (with any
forwarded environment values). So by default only redirects within the same origin are followed; the
`redirects: same-site` setting also allows another port or an https upgrade on the same host and hosts under
the same parent domain. A downgrade from https to http is never followed.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from .urls import display, origin

RedirectPolicy = Literal["same-origin", "same-site"]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _parent(host: str) -> str | None:
    labels = host.rstrip(".").split(".")
    return ".".join(labels[1:]) if len(labels) > 2 else None


def is_same_site(source: str, target: str) -> bool:
    """Same host (any port, http→https allowed), or DNS names one of which is under the other, or siblings
    under a parent of at least two labels (`api.example.com` and `mcp.example.com`). Never https→http."""
    src_scheme, src_host, _ = origin(source)
    dst_scheme, dst_host, _ = origin(target)
    if src_scheme == "https" and dst_scheme != "https":
        return False
    if not src_host or not dst_host:
        return False
    if src_host == dst_host:
        return True
    if _is_ip(src_host) or _is_ip(dst_host):
        return False
    if dst_host.endswith("." + src_host) or src_host.endswith("." + dst_host):
        return _parent(src_host) is not None or _parent(dst_host) is not None
    parent = _parent(src_host)
    return parent is not None and parent == _parent(dst_host)


def redirect_refusal(source: str, target: str, policy: RedirectPolicy) -> str | None:
    """None when a redirect from `source` to `target` may be followed, else the reason (secrets masked)."""
    try:
        same_origin = origin(source) == origin(target)
    except ValueError:
        return f"the server at {display(source)} redirected to a malformed URL; refused"
    if same_origin:
        return None
    if policy == "same-site" and is_same_site(source, target):
        return None
    if origin(source)[0] == "https" and origin(target)[0] != "https":
        why = "from https to plain http"
    else:
        why = "to another origin" if policy == "same-origin" else "outside the site"
    hint = "" if policy == "same-site" else " (`redirects: same-site` allows hosts of the same site)"
    return (
        f"the server at {display(source)} redirected {why}, to {display(target)}; refused, since the "
        f"configured headers and the request body would go there{hint}"
    )
