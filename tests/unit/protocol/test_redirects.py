"""The redirect policy (protocol/redirects.py): which redirects may carry our headers and body."""

from __future__ import annotations

import pytest

from mcp_sse_proxy.protocol.redirects import is_same_site, redirect_refusal


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("https://a.example/mcp", "https://a.example/other"),
        ("https://a.example/mcp", "https://A.EXAMPLE:443/x"),
        ("http://127.0.0.1:8000/mcp", "http://127.0.0.1:8000/mcp2?x=1"),
    ],
)
def test_same_origin_redirects_are_followed(source: str, target: str) -> None:
    assert redirect_refusal(source, target, "same-origin") is None


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("https://a.example/mcp", "https://evil.example/mcp"),
        ("https://a.example/mcp", "http://a.example/mcp"),
        ("http://127.0.0.1:8000/mcp", "http://127.0.0.1:8001/mcp"),
        ("http://a.example/mcp", "https://a.example/mcp"),
    ],
)
def test_other_origins_are_refused_naming_both_urls(source: str, target: str) -> None:
    reason = redirect_refusal(source, target, "same-origin")
    assert reason is not None
    assert source.split("?")[0].lower() in reason.lower() and target in reason


def test_refusal_masks_tokens_in_both_urls() -> None:
    reason = redirect_refusal(
        "https://u:pw-1@a.example/mcp?token=s3cr3t", "https://x.example/?k=s3cr3t", "same-site"
    )
    assert reason is not None and "s3cr3t" not in reason and "pw-1" not in reason


@pytest.mark.parametrize(
    ("source", "target", "same"),
    [
        ("http://127.0.0.1:1/x", "http://127.0.0.1:2/x", True),
        ("http://h.example/x", "https://h.example/x", True),
        ("https://h.example/x", "http://h.example/x", False),
        ("https://api.example.com/x", "https://mcp.example.com/x", True),
        ("https://example.com/x", "https://www.example.com/x", True),
        ("https://api.example.com/x", "https://api.example.org/x", False),
        ("https://example.com/x", "https://other.com/x", False),
        ("http://10.0.0.1/x", "http://10.0.0.2/x", False),
    ],
)
def test_same_site(source: str, target: str, same: bool) -> None:
    assert is_same_site(source, target) is same
    assert (redirect_refusal(source, target, "same-site") is None) is same


def test_https_downgrade_is_refused_even_same_site() -> None:
    reason = redirect_refusal("https://h.example/mcp", "http://h.example/mcp", "same-site")
    assert reason is not None and "plain http" in reason
