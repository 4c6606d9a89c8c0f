"""The one error the configuration loader raises: every problem found, worded for the person fixing it."""

from __future__ import annotations

from collections.abc import Iterable

from mcp_sse_proxy.errors import ProxyError


class ConfigError(ProxyError):
    """The configuration cannot be used (exit status 2).

    `problems` holds one line per problem; each names the profile, the setting, where the value came from
    and what was expected, and never repeats a secret value.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))
