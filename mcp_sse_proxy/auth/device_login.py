"""`--login` without a browser: the device authorization grant (RFC 8628) when the server offers it.

The grant itself is `device.py` (`device_sign_in`); this module decides when to use it (a terminal login
where no browser can be opened, or `--no-oauth-open-browser`) and runs it with what the SDK's discovery and
registration found. A proxy serving a desktop client never uses it: nobody would see the code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2

from .browser import browser_available

if TYPE_CHECKING:
    from .bearer import Job

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class DeviceGranted(BaseException):
    """Ends the SDK's authorization-code flow early: the device grant produced `token` (a token response).

    A BaseException so that the SDK's `except Exception` (which logs a traceback) lets it pass."""

    def __init__(self, token: dict[str, Any]) -> None:
        super().__init__("device grant completed")
        self.token = token


def _device() -> Any:
    try:
        from . import device
    except ImportError:
        return None
    return device if hasattr(device, "device_sign_in") else None


def wanted(job: Job) -> bool:
    """Whether this job should prefer the device grant (when the server turns out to support it)."""
    if job.on_device is None or _device() is None:
        return False
    return not job.profile.oauth_open_browser or not browser_available()


async def sign_in(
    job: Job, context: Any, raw_metadata: dict[str, Any] | None, client: httpx2.AsyncClient, timeout: float
) -> dict[str, Any] | None:
    """The token response of a device sign-in, or None when the server has no device endpoint."""
    endpoint = (raw_metadata or {}).get("device_authorization_endpoint")
    info = context.client_info
    if not isinstance(endpoint, str) or context.oauth_metadata is None or info is None:
        return None
    if info.grant_types and DEVICE_GRANT not in info.grant_types:
        return None  # registered without the grant: the server would refuse it
    scope = context.client_metadata.scope
    include_resource = context.should_include_resource_param(context.protocol_version)
    assert job.on_device is not None
    return await _device().device_sign_in(
        client,
        device_endpoint=endpoint,
        token_endpoint=str(context.oauth_metadata.token_endpoint),
        client_id=info.client_id,
        client_secret=info.client_secret,
        scopes=scope.split() if scope else None,
        resource=context.get_resource_url() if include_resource else None,
        show=job.on_device,
        timeout=timeout,
        auth_method=info.token_endpoint_auth_method or "client_secret_basic",
    )
