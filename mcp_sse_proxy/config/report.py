"""Text for `--print-config` and `--list-profiles`: derived from the schema, secrets masked.

The effective configuration is printed as YAML (scalars in JSON form, which YAML reads as-is) with the
source of every value as a trailing comment, so the output can be read back or diffed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mcp_sse_proxy.config import Catalog
from mcp_sse_proxy.config.model import AppConfig, Profile
from mcp_sse_proxy.config.schema import settings
from mcp_sse_proxy.redaction import MASK, Redactor

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_LOG_ATTRIBUTES = {
    "log_level": "level",
    "log_file": "log_file",
    "debug_enabled": "debug_enabled",
    "debug_filename": "debug_filename",
}


def render_config(config: AppConfig, *, version: str) -> str:
    """The effective configuration of every selected profile and of logging, as commented YAML."""
    lines = [f"# mcp-sse-proxy {version}: effective configuration; secrets are shown as {MASK}", "profiles:"]
    several = len(config.profiles) > 1
    for profile in config.profiles:
        lines.append(f"  {_key(profile.name)}:")
        lines.extend(_profile_lines(profile, several=several))
    lines.append("logging:")
    for key, attribute in _LOG_ATTRIBUTES.items():
        value = getattr(config.logging, attribute)
        lines.append(f"  {key}: {_scalar(value)}  # {config.logging.sources.get(key, 'default')}")
    return Redactor(config.secrets).redact("\n".join(lines)) + "\n"


#: Flags and ST_PROXY_* variables apply to every selected profile: with several, each such line says so.
EVERY_PROFILE = "; applies to every selected profile"


def _profile_lines(profile: Profile, *, several: bool = False) -> list[str]:
    def note(source: str) -> str:
        return source + EVERY_PROFILE if several and source.startswith(("flag ", "env ")) else source

    lines = []
    for name, setting in settings().items():
        if setting.scope != "profile":
            continue
        value = getattr(profile, name)
        source = profile.sources.get(name, "default")
        if name == "headers":
            if not value:
                lines.append(f"    headers: {{}}  # {source}")
                continue
            lines.append("    headers:")
            for header in value:
                header_source = profile.sources.get(f"headers.{header}", source)
                lines.append(f"      {_key(header)}: {_scalar(MASK)}  # {note(header_source)}")
            continue
        lines.append(f"    {name}: {_scalar(value)}  # {note(source)}")
    return lines


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
