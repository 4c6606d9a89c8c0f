"""The include/exclude glob rule for tool names, for one profile or each aggregated one (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any


def is_visible(original: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Include/exclude globs on the original name: included (all when none given) and not excluded."""
    if include and not any(fnmatchcase(original, pattern) for pattern in include):
        return False
    return not any(fnmatchcase(original, pattern) for pattern in exclude)


class ToolFilter:
    """Hides tools from `tools/list` results and refuses calls of hidden tools."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude)

    def hides(self, name: object) -> bool:
        return self.active and (not isinstance(name, str) or not is_visible(name, self.include, self.exclude))

    def filter_list(self, body: Any) -> Any | None:
        """A `tools/list` response body without the hidden tools; None when nothing had to change."""
        result = body.get("result") if isinstance(body, dict) else None
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(tools, list):
            return None
        kept = [t for t in tools if not (isinstance(t, dict) and self.hides(t.get("name")))]
        if len(kept) == len(tools):
            return None
        return {**body, "result": {**result, "tools": kept}}
