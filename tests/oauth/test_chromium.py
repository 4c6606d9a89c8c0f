"""End to end with a real browser: headless Chromium signs in at oidc-provider, redirected to a real loopback
callback listener (the SDK's OAuth client), and approves a device code on the provider's verification page.

Skipped where no Chromium is installed (CI does not install it: it costs minutes); everything else in the
sign-in suite uses the scripted browsers, which need nothing beyond Python.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from mcp_sse_proxy.auth.device import device_sign_in
from tests.oauth.chromium_browser import chromium_path, load
from tests.oauth.oidc_peer import OidcStack, oidc_stack_fixture  # noqa: F401 - the fixture
from tests.oauth.test_device_grant import register_device_client
from tests.oauth.test_oidc_peer import MemoryStorage, call_text, signed_in_session

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.integration,
    pytest.mark.skipif(
        chromium_path() is None, reason="no chromium on this machine (.ci/run installs Debian's chromium where apt-get runs as root)"
    ),
]


class _Callback(http.server.BaseHTTPRequestHandler):
    received: list[str]

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.received.append(self.path)
        body = b"<!DOCTYPE html><html><body>Signed in. You can close this tab.</body></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        pass


@contextmanager
def loopback_callback() -> Iterator[tuple[str, list[str]]]:
    """A listener on 127.0.0.1 (free port) recording the paths it is sent to; its `/callback` URL."""
    received: list[str] = []
    handler = type("Callback", (_Callback,), {"received": received})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/callback", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_chromium_signs_in_through_the_loopback_callback(oidc_stack: OidcStack) -> None:
    with loopback_callback() as (callback_url, received):

        async def open_browser(url: str) -> None:
            # --dump-dom returns once the last page (our callback's) has loaded.
            result = await anyio.to_thread.run_sync(load, url)
            assert result.returncode == 0 and "Signed in" in result.stdout, result.stderr[-1000:]

        async def callback() -> AuthorizationCodeResult:
            # A real browser also asks the callback's origin for /favicon.ico: a callback listener must only
            # take its own path as the redirect.
            callbacks = [path for path in received if path.startswith("/callback?")]
            assert len(callbacks) == 1, received
            query = {name: values[0] for name, values in parse_qs(urlsplit(callbacks[0]).query).items()}
            return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

        storage = MemoryStorage()
        metadata = OAuthClientMetadata(redirect_uris=[callback_url], client_name="chromium e2e")
        auth = OAuthClientProvider(oidc_stack.mcp_url, metadata, storage, open_browser, callback)
        async with signed_in_session(oidc_stack, auth) as session:
            who = json.loads(await call_text(session, "whoami"))
    assert who["subject"] == "test-user" and who["scopes"] == ["mcp"]
    assert oidc_stack.stats()["authorizations"] == 1


async def test_chromium_approves_a_device_code(oidc_stack: OidcStack) -> None:
    client = await register_device_client(oidc_stack)
    metadata = httpx2.get(oidc_stack.metadata_url, timeout=10).json()
    pages: list[str] = []

    async with anyio.create_task_group() as tg:

        async def approve(url: str) -> None:
            result = await anyio.to_thread.run_sync(load, url)
            pages.append(result.stdout)

        def show(uri: str, complete: str | None, user_code: str) -> None:
            tg.start_soon(approve, complete or uri)

        async with httpx2.AsyncClient(timeout=10) as http:
            with anyio.fail_after(60):
                token = await device_sign_in(
                    http,
                    device_endpoint=metadata["device_authorization_endpoint"],
                    token_endpoint=metadata["token_endpoint"],
                    client_id=client["client_id"],
                    client_secret=None,
                    scopes=["mcp"],
                    resource=oidc_stack.mcp_url,
                    show=show,
                    timeout=60,
                )
    assert token["access_token"]
    assert pages and "Sign-in Success" in pages[0]
