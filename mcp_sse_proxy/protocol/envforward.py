"""Forwarding of selected environment variables into `tools/call` `arguments.env` (a 0.1.4 feature)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def select_env(environ: Mapping[str, str], prefixes: Iterable[str]) -> dict[str, str]:
    """The variables whose names start with one of `prefixes` (empty prefixes are ignored)."""
    wanted = tuple(p for p in prefixes if p)
    if not wanted:
        return {}
    return {name: value for name, value in environ.items() if name.startswith(wanted)}


def inject_env(body: dict[str, Any], forwarded: Mapping[str, str]) -> dict[str, Any] | None:
    """A copy of a `tools/call` request with `forwarded` merged into `params.arguments.env`.

    Values the client already set win over forwarded ones. None when nothing changes.
    """
    if not forwarded:
        return None
    params = body.get("params")
    if not isinstance(params, dict):
        return None
    arguments = params.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return None
    existing = arguments.get("env")
    if existing is not None and not isinstance(existing, dict):
        return None
    env = {**forwarded, **(existing or {})}
    if existing is not None and env == existing:
        return None
    return {**body, "params": {**params, "arguments": {**arguments, "env": env}}}
