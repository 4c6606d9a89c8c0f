"""Text for `--print-config` and `--list-profiles`: derived from the schema, secrets masked.

The effective configuration is printed as a profile file (YAML, scalars in JSON form, which YAML reads
as-is) with the source of every value as a trailing comment, so the output can be saved and used, or diffed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp_sse_proxy.config import Catalog
from mcp_sse_proxy.config.model import LOG_KEYS, AppConfig, LogSettings, Profile
from mcp_sse_proxy.config.schema import settings
from mcp_sse_proxy.redaction import MASK, Redactor

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def render_config(config: AppConfig, *, version: str) -> str:
    """The effective configuration as a profile file: every selected profile, logging in the first.

    Saved to a file, it loads as it is (`--config FILE`), giving the same settings except the secrets,
    which are shown as `***`. Comments give each value's source and where the debug log and trace go.
    """
    lines = [
        f"# mcp-sse-proxy {version}: effective configuration; secrets are shown as {MASK}.",
        f"# Usable as a profile file (--config FILE) once each {MASK} is replaced by the real value.",
        *_log_destinations(config.logging),
        "profiles:",
    ]
    several = len(config.profiles) > 1
    for index, profile in enumerate(config.profiles):
        lines.append(f"  {_key(profile.name)}:")
        lines.extend(_profile_lines(profile, several=several))
        if index == 0:
            lines.append("    # logging: process-wide, taken from the first selected profile")
            for key, attribute in LOG_KEYS.items():
                value = _located(key, getattr(config.logging, attribute))
                lines.append(f"    {key}: {_scalar(value)}  # {config.logging.sources.get(key, 'default')}")
    return Redactor(config.secrets).redact("\n".join(lines)) + "\n"


def _log_destinations(settings: LogSettings) -> list[str]:
    from mcp_sse_proxy.logs import debug_log_path

    debug_log = debug_log_path(settings)
    if settings.debug_enabled:
        debug = f"# debug log: {debug_log}"
    else:
        debug = f"# debug log: off (--debug-enabled writes it to {debug_log})"
    if settings.trace_file is not None:
        trace = f"# trace: {settings.trace_file.expanduser().absolute()}"
    else:
        trace = "# trace: off (--trace FILE writes every message there as JSON Lines)"
    return [debug, trace]


#: Flags and ST_PROXY_* variables apply to every selected profile: with several, each such line says so.
EVERY_PROFILE = "; applies to every selected profile"


def _profile_lines(profile: Profile, *, several: bool = False) -> list[str]:
    def note(source: str) -> str:
        return source + EVERY_PROFILE if several and source.startswith(("flag ", "env ")) else source

    lines = []
    for name, setting in settings().items():
        if setting.scope != "profile":
            continue
        value = _located(name, getattr(profile, name))
        source = profile.sources.get(name, "default")
        if name == "headers":
            lines.extend(_header_lines(profile, source, note))
            continue
        lines.append(f"    {name}: {_scalar(value)}  # {note(source)}")
    return lines


def _header_lines(profile: Profile, source: str, note: Callable[[str], str]) -> list[str]:
    """The headers, except those `header_file` provides: read back, the file supplies them again."""
    lines = []
    from_file = []
    for header in profile.headers:
        header_source = profile.sources.get(f"headers.{header}", source)
        if profile.header_file is not None and header_source.startswith("header-file"):
            from_file.append(header)
            continue
        lines.append(f"      {_key(header)}: {_scalar(MASK)}  # {note(header_source)}")
    filed = f"  # and from header_file: {', '.join(from_file)}" if from_file else ""
    if not lines:
        return [f"    headers: {{}}  # {source}{filed}"]
    return [f"    headers:{filed or '  # ' + source}", *lines]


def _located(name: str, value: Any) -> Any:
    """Paths of kind `path` made absolute: in a file, a relative one would mean the file's directory."""
    if isinstance(value, Path) and settings()[name].kind == "path":
        return value.expanduser().absolute()
    return value


def _key(name: str) -> str:
    return name if _PLAIN_KEY.match(name) else json.dumps(name, ensure_ascii=False)


def _scalar(value: Any) -> str:
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, ensure_ascii=False)


def render_profile_list(catalog: Catalog) -> str:
    """One line per profile: name, where it is defined, what it extends; shadowed definitions last."""
    lines = []
    for name, doc in sorted(catalog.profiles.items()):
        extends = f"\textends {', '.join(doc.extends)}" if doc.extends else ""
        lines.append(f"{name}\t{doc.location}{extends}")
    for doc in catalog.shadowed:
        lines.append(f"{doc.name}\t{doc.location}\t(shadowed by {catalog.profiles[doc.name].location})")
    return "\n".join(lines) + ("\n" if lines else "")
