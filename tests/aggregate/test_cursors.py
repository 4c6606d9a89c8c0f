"""Opaque versioned cursors (no I/O)."""

from __future__ import annotations

import pytest

from mcp_sse_proxy.aggregate.cursors import CursorError, Pager


def test_one_page_without_a_size() -> None:
    page = Pager(None).page("tools", [1, 2, 3], None)
    assert page.items == [1, 2, 3] and page.next_cursor is None


def test_pages_follow_cursors_to_the_end() -> None:
    pager = Pager(2)
    items = list(range(5))
    seen, cursor = [], None
    for _ in range(10):
        page = pager.page("tools", items, cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == items


def test_a_cursor_is_stale_once_the_list_changed() -> None:
    pager = Pager(2)
    cursor = pager.page("tools", [1, 2, 3], None).next_cursor
    assert cursor is not None
    with pytest.raises(CursorError, match="changed"):
        pager.page("tools", [1, 2, 3, 4], cursor)


@pytest.mark.parametrize("cursor", ["garbage", "", "e30", "WyJ4IiwidG9vbHMiLCJ2IiwwXQ"])
def test_forged_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(CursorError):
        Pager(2, nonce="n").page("tools", [1, 2, 3], cursor)


def test_a_cursor_of_another_list_or_process_is_refused() -> None:
    cursor = Pager(1, nonce="n1").page("tools", [1, 2], None).next_cursor
    assert cursor is not None
    with pytest.raises(CursorError):
        Pager(1, nonce="n1").page("prompts", [1, 2], cursor)
    with pytest.raises(CursorError):
        Pager(1, nonce="n2").page("tools", [1, 2], cursor)
