"""Pure sign-in rules: resource names, store keys, callback ports, records, redaction of learnt tokens."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.auth import uses_oauth
from mcp_sse_proxy.auth.keys import (
    PORT_BASE,
    PORT_SPAN,
    authorize_params,
    callback_ports,
    canonical_resource,
    redirect_uri,
    store_key,
)
from mcp_sse_proxy.auth.record import TokenRecord
from mcp_sse_proxy.config.model import Profile
from mcp_sse_proxy.redaction import MASK, Redactor, register_secret


def test_the_resource_is_the_url_in_canonical_form() -> None:
    assert canonical_resource("HTTPS://Example.COM:443/mcp?x=1#frag") == "https://example.com/mcp"
    assert canonical_resource("http://user:pw@host:80/a/") == "http://host/a/"
    assert canonical_resource("http://127.0.0.1:8000/mcp") == "http://127.0.0.1:8000/mcp"


def test_store_keys_differ_by_resource_and_client() -> None:
    a = store_key("https://a.example/mcp", None)
    assert a == store_key("https://a.example/mcp", None)
    assert a != store_key("https://a.example/mcp", "client")
    assert a != store_key("https://b.example/mcp", None)


@given(st.text(min_size=1, max_size=60))
def test_derived_callback_ports_are_stable_distinct_and_in_range(url: str) -> None:
    ports = callback_ports(url, None)
    assert ports == callback_ports(url, None)
    assert len(set(ports)) == len(ports) == 3
    assert all(PORT_BASE <= port < PORT_BASE + PORT_SPAN for port in ports)


def test_a_configured_callback_port_is_the_only_one() -> None:
    assert callback_ports("https://a.example/mcp", 8765) == [8765]
    assert redirect_uri(8765) == "http://127.0.0.1:8765/callback"


def test_authorize_params_parse_name_value_entries() -> None:
    assert authorize_params(("prompt=consent", "audience=a=b", "flag", "=x")) == {
        "prompt": "consent",
        "audience": "a=b",
        "flag": "",
    }


def test_a_token_is_fresh_until_shortly_before_its_expiry() -> None:
    now = time.time()
    record = TokenRecord("k", "r", access_token="t", expires_at=now + 3600, updated_at=now)
    assert record.is_fresh(now)
    assert not record.is_fresh(now + 3590)  # within the 30 s skew
    short = TokenRecord("k", "r", access_token="t", expires_at=now + 4, updated_at=now)
    assert short.is_fresh(now + 2) and not short.is_fresh(now + 3.5)
    assert TokenRecord("k", "r", access_token="t").is_fresh()
    assert not TokenRecord("k", "r").is_fresh()


def test_a_record_summary_holds_no_secret() -> None:
    record = TokenRecord(
        "k",
        "r",
        access_token="access-value",
        refresh_token="refresh-value",
        client_info={"client_id": "c", "client_secret": "client-secret-value"},
    )
    text = repr(record.summary())
    assert all(secret not in text for secret in record.secrets())
    assert set(record.secrets()) == {"access-value", "refresh-value", "client-secret-value"}
    assert TokenRecord.from_json(record.to_json()) == record


def test_learnt_secrets_are_masked_by_every_redactor() -> None:
    redactor = Redactor(["configured-secret"])
    register_secret("learnt-token-value-1234")
    text = redactor.redact("a learnt-token-value-1234 b configured-secret c")
    assert text == f"a {MASK} b {MASK} c"
    assert Redactor().mask_values("learnt-token-value-1234") == MASK


def test_a_static_authorization_header_or_auth_none_turns_oauth_off() -> None:
    assert uses_oauth(Profile(name="p", url="http://h/mcp"))
    assert not uses_oauth(Profile(name="p", url="http://h/mcp", headers={"authorization": "Bearer x"}))
    assert not uses_oauth(Profile(name="p", url="http://h/mcp", auth="none"))
    assert uses_oauth(Profile(name="p", url="http://h/mcp", headers={"X-Other": "1"}, auth="oauth"))


@pytest.mark.parametrize(
    ("client_info", "scope", "covered"),
    [
        ({"client_id": "c", "scope": "mcp offline_access"}, "mcp", True),
        ({"client_id": "c", "scope": "mcp offline_access"}, "mcp mcp:admin", False),
        ({"client_id": "c", "scope": "mcp mcp:admin"}, "mcp:admin mcp", True),
        ({"client_id": "c"}, "mcp mcp:admin", True),  # no scope list registered: nothing to go beyond
        (None, "mcp", True),
        ({"client_id": "c", "scope": "mcp"}, None, True),
    ],
)
def test_a_step_up_registers_again_only_beyond_the_registered_scopes(client_info, scope, covered) -> None:
    from mcp_sse_proxy.auth.provider import registration_covers

    assert registration_covers(client_info, scope) is covered
