"""The SDK's `OAuthClientProvider`, prepared from what the store keeps.

The SDK's own start-up (`_initialize`) would read the tokens without their expiry and keep no discovery
metadata; `prepare` restores both, the registered (or configured) client, and the profile's scope and
`resource` choices, so refresh and step-up after a restart go to the right authorization server.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.utils import union_scopes
from mcp.shared.auth import (
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthMetadata,
    OAuthToken,
    ProtectedResourceMetadata,
)

from . import device_login
from .errors import SignInError
from .record import TokenRecord, keep_secret

if TYPE_CHECKING:
    from .bearer import Job


class Storage:
    """The SDK's `TokenStorage`: serves the record's values and captures what the flow obtains."""

    def __init__(self, job: Job, record: TokenRecord | None, client_info: OAuthClientInformationFull | None):
        self._job = job
        self._record = record
        self.client_info = client_info
        self.tokens: OAuthToken | None = None
        self.received_at = 0.0

    async def get_tokens(self) -> OAuthToken | None:
        return _tokens_of(self._record)

    async def set_tokens(self, tokens: OAuthToken) -> None:
        keep_secret(tokens.access_token)
        keep_secret(tokens.refresh_token)
        self.tokens = tokens
        self.received_at = time.time()

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        keep_secret(client_info.client_secret, lasting=True)
        self.client_info = client_info
        # Kept at once: a sign-in the user abandons must not cost another registration next time.
        record = self._record or TokenRecord(key=self._job.key, resource=self._job.resource)
        record.client_info = client_info.model_dump(mode="json", exclude_none=True)
        record.client_id = client_info.client_id
        record.access_token = record.refresh_token = None
        self._record = record
        self._job.store.save(record)


class Provider(OAuthClientProvider):
    """The SDK provider, with configured scopes joined to the challenged ones at authorization."""

    configured_scope: str | None = None
    #: The authorization server's metadata as served (the SDK's model drops members it does not know,
    #: such as `device_authorization_endpoint`).
    raw_metadata: dict[str, Any] | None = None

    async def _perform_authorization_code_grant(self) -> tuple[str, str]:
        metadata = self.context.client_metadata
        metadata.scope = union_scopes(self.configured_scope, metadata.scope) or None
        return await super()._perform_authorization_code_grant()


def prepare(job: Job, record: TokenRecord | None, *, redirect_uris: list[str]) -> tuple[Provider, Storage]:
    from .. import __version__

    profile = job.profile
    secret = _client_secret(job)
    configured_scope = " ".join(profile.oauth_scopes) or None
    metadata = OAuthClientMetadata(
        redirect_uris=redirect_uris,  # type: ignore[arg-type]
        token_endpoint_auth_method="client_secret_post" if secret else "none",
        grant_types=["authorization_code", "refresh_token"]
        + ([device_login.DEVICE_GRANT] if device_login.wanted(job) else []),
        response_types=["code"],
        scope=configured_scope,
        client_name="mcp-sse-proxy",
        software_id="mcp-sse-proxy",
        software_version=__version__,
        application_type="native",
    )
    client_info = _client_info(job, record, secret, redirect_uris)
    storage = Storage(job, record, client_info)
    provider = Provider(
        server_url=_server_url(job),
        client_metadata=metadata,
        storage=storage,
        # The SDK uses it (instead of registering) where the server advertises
        # client_id_metadata_document_supported; a pre-registered client above wins, as the spec orders.
        client_metadata_url=profile.oauth_client_metadata_url,
    )
    provider.configured_scope = configured_scope
    context = provider.context
    # Restored by hand: the SDK's own start-up reads tokens without their expiry and keeps no metadata.
    context.current_tokens = _tokens_of(record)
    context.token_expiry_time = record.expires_at if record is not None else None
    context.client_info = client_info
    if record is not None and record.oauth_metadata:
        context.oauth_metadata = _parse(OAuthMetadata, record.oauth_metadata)
    if record is not None and record.resource_metadata:
        prm = _parse(ProtectedResourceMetadata, record.resource_metadata)
        context.protected_resource_metadata = prm
        if prm is not None and prm.authorization_servers:
            context.auth_server_url = str(prm.authorization_servers[0])
    provider._initialized = True  # type: ignore[attr-defined]  # the values above replace its loading
    if not profile.oauth_resource:
        context.should_include_resource_param = lambda protocol_version=None: False  # type: ignore[method-assign]
    return provider, storage


def registration_covers(client_info: dict[str, Any] | None, scope: str | None) -> bool:
    """Whether a dynamic registration may ask for `scope`: False only where the registration response
    named its allowed scopes and `scope` goes beyond them (oidc-provider, for one, then refuses the
    authorization with invalid_scope; a step-up has to register again with the union)."""
    registered = (client_info or {}).get("scope")
    if not isinstance(registered, str) or not scope:
        return True
    return set(scope.split()) <= set(registered.split())


def _server_url(job: Job) -> str:
    # The endpoint actually used (detection may have added /mcp to a bare URL), without its query.
    parts = urlsplit(job.trigger.url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _client_secret(job: Job) -> str | None:
    profile = job.profile
    if profile.oauth_client_secret:
        return profile.oauth_client_secret
    if profile.oauth_client_secret_file is not None:
        try:
            text = profile.oauth_client_secret_file.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise SignInError(
                f"cannot read oauth_client_secret_file {profile.oauth_client_secret_file}: "
                f"{exc.strerror or exc}"
            ) from None
        secret = text.strip().splitlines()[0].strip() if text.strip() else ""
        keep_secret(secret, lasting=True)
        return secret or None
    return None


def _client_info(
    job: Job, record: TokenRecord | None, secret: str | None, redirect_uris: list[str]
) -> OAuthClientInformationFull | None:
    profile = job.profile
    if profile.oauth_client_id:
        return OAuthClientInformationFull(
            client_id=profile.oauth_client_id,
            client_secret=secret,
            redirect_uris=redirect_uris,  # type: ignore[arg-type]
            token_endpoint_auth_method="client_secret_post" if secret else "none",
            grant_types=["authorization_code", "refresh_token"],
        )
    if record is not None and record.client_info:
        return _parse(OAuthClientInformationFull, record.client_info)
    return None


def _tokens_of(record: TokenRecord | None) -> OAuthToken | None:
    if record is None or not record.access_token:
        return None
    expires_in = int(record.expires_at - time.time()) if record.expires_at is not None else None
    return OAuthToken(
        access_token=record.access_token,
        refresh_token=record.refresh_token,
        scope=record.scope,
        expires_in=expires_in,
    )


def _parse(model: Any, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValueError:
        return None


def save_record(job: Job, provider: Provider, storage: Storage, old: TokenRecord | None) -> TokenRecord:
    tokens = storage.tokens
    assert tokens is not None
    context = provider.context
    record = TokenRecord(key=job.key, resource=job.resource)
    record.issuer = str(context.oauth_metadata.issuer) if context.oauth_metadata is not None else None
    info = context.client_info or storage.client_info
    record.client_info = info.model_dump(mode="json", exclude_none=True) if info is not None else None
    record.client_id = info.client_id if info is not None else None
    record.access_token = tokens.access_token
    record.refresh_token = tokens.refresh_token or (old.refresh_token if old is not None else None)
    record.scope = tokens.scope
    record.expires_at = storage.received_at + tokens.expires_in if tokens.expires_in is not None else None
    if context.oauth_metadata is not None:
        known = context.oauth_metadata.model_dump(mode="json", exclude_none=True)
        raw = provider.raw_metadata or (old.oauth_metadata if old is not None else None) or {}
        record.oauth_metadata = {**raw, **known}
    if context.protected_resource_metadata is not None:
        record.resource_metadata = context.protected_resource_metadata.model_dump(
            mode="json", exclude_none=True
        )
    record.challenge = job.trigger.challenge or (old.challenge if old is not None else None)
    job.store.save(record)
    return record
