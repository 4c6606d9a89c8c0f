"""The example profiles in profiles/ load and validate (secrets supplied through the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_sse_proxy.config import Document, build_catalog, load_config

from .helpers import flag

PROFILES = Path(__file__).resolve().parents[3] / "profiles"
ENVIRON = {"EXAMPLE_API_TOKEN": "example-token", "TICKETS_TOKEN": "tickets-token"}


def documents() -> list[Document]:
    return [Document(str(p), p.read_text()) for p in sorted(PROFILES.glob("*.yaml"))]


def runnable() -> list[str]:
    catalog = build_catalog(documents())
    return sorted(name for name, doc in catalog.profiles.items() if name != "common")


def test_examples_exist() -> None:
    assert set(runnable()) == {"local-sse", "streamable-with-headers", "notes", "tickets"}


@pytest.mark.parametrize("name", runnable())
def test_example_profile_validates(name: str) -> None:
    config = load_config([flag("profile", name)], ENVIRON, documents())
    assert config.profiles[0].name == name
    assert config.profiles[0].url.startswith("http")


def test_two_server_set_selects_both() -> None:
    config = load_config([flag("profile", "notes,tickets")], ENVIRON, documents())
    notes, tickets = config.profiles
    assert (notes.alias, tickets.alias) == ("notes", "tix")
    assert notes.ping_interval == tickets.ping_interval == 15.0
    assert config.logging.level == "warning"
    assert tickets.headers["Authorization"] == "Bearer tickets-token"
    assert "tickets-token" in config.secrets
