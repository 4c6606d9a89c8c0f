"""The `--check` document (`schemas/check-report.schema.json`) and its rendering for people."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .. import __version__
from ..config.model import Profile
from .report import PROG

#: Tool names listed in the human report before "…".
SHOWN_NAMES = 12

_STATUS_MARK = {"ok": "ok", "failed": "FAIL", "skipped": "skip", "warning": "warn"}


def build_document(profiles: Iterable[Profile], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The `--check --json` document for reports in profile order."""
    profiles = tuple(profiles)
    return {
        "tool": PROG,
        "version": __version__,
        "ok": all(report["ok"] for report in reports),
        "profiles": reports,
        "aggregate": _aggregate(profiles, reports),
    }


def _aggregate(profiles: tuple[Profile, ...], reports: list[dict[str, Any]]) -> dict[str, Any] | None:
    """With several profiles: each tool as the aggregate exposes it (`alias__tool`), clashes, long names."""
    if len(profiles) < 2:
        return None
    owners: dict[str, list[str]] = {}
    exposed: list[str] = []
    shortened: list[str] = []
    for profile, report in zip(profiles, reports, strict=True):
        for tool in report["tools"]:
            owners.setdefault(tool, []).append(profile.name)
            name = f"{profile.alias}__{tool}"
            exposed.append(name)
            if len(name) > profile.max_name_length:
                shortened.append(name)
    return {
        "tools": len(exposed),
        "exposed_names": exposed,
        "shortened": shortened,
        "duplicates": {tool: names for tool, names in owners.items() if len(names) > 1},
    }


def render_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_text(document: Mapping[str, Any]) -> str:
    """The report for people: one block per profile, then a summary line."""
    lines: list[str] = []
    for report in document["profiles"]:
        lines.extend(_render_profile(report))
        lines.append("")
    aggregate = document.get("aggregate")
    if aggregate:
        lines.append(f"aggregate: {aggregate['tools']} tools as <prefix>__<tool>")
        for tool, owners in aggregate["duplicates"].items():
            lines.append(f"  {tool!r} is offered by {', '.join(owners)} (the prefixes keep them apart)")
        for name in aggregate["shortened"]:
            lines.append(f"  {name} is longer than max_name_length: it will be shortened")
        lines.append("")
    reports = document["profiles"]
    working = sum(1 for report in reports if report["ok"])
    verdict = "all OK" if document["ok"] else "PROBLEMS FOUND"
    lines.append(
        f"{PROG} {document['version']} --check: {working} of {len(reports)} profile"
        f"{'s' if len(reports) != 1 else ''} working: {verdict}"
    )
    return "\n".join(lines) + "\n"


def _render_profile(report: Mapping[str, Any]) -> list[str]:
    error = report["error"]
    state = "OK" if report["ok"] else f"FAILED at {error['step'] if error else '?'}"
    lines = [f"profile {report['profile']}: {state}"]
    source = f"  (from {report['url_source']})" if report["url_source"] else ""
    lines.append(f"  {'url':<13}{report['url']}{source}")
    lines.append(f"  {'proxy':<13}{report['proxy'] or 'none'}")
    for entry in report["steps"]:
        elapsed = f"  [{entry['elapsed_ms']:g} ms]" if entry["elapsed_ms"] is not None else ""
        mark = _STATUS_MARK.get(entry["status"], entry["status"])
        lines.append(f"  {mark:<5}{entry['step']:<12}{entry['detail']}{elapsed}")
        if entry["step"] == "transport" and report["transport"]:
            for attempt in _failed_attempts(report["transport"]):
                lines.append(f"  {'':<17}tried {attempt['transport']} {attempt['url']}: {attempt['result']}")
        if entry["hint"] and entry["status"] != "failed":
            lines.append(f"  {'':<17}hint: {entry['hint']}")
    lines.extend(_render_server(report))
    for note in report["notes"]:
        lines.append(f"  {'note':<13}{note}")
    if error:  # its message is the failed step's line above
        if error["www_authenticate"]:
            lines.append(f"  {'challenge':<13}WWW-Authenticate: {error['www_authenticate']}")
        lines.append(f"  {'try':<13}{error['hint']}")
    return lines


def _render_server(report: Mapping[str, Any]) -> list[str]:
    lines = []
    server = report["server"]
    if server:
        name = " ".join(filter(None, (server["name"], server["version"]))) or "unnamed"
        lines.append(f"  {'server':<13}{name} (protocol {server['protocol_version']})")
        lines.append(f"  {'capabilities':<13}{_capabilities_text(server['capabilities']) or 'none'}")
        if server["instructions"]:
            lines.append(f"  {'instructions':<13}{server['instructions']}")
    counts = report["counts"]
    if any(value is not None for value in counts.values()):
        shown = ", ".join(count_text(value, kind) for kind, value in counts.items() if value is not None)
        lines.append(f"  {'offers':<13}{shown}")
    if report["tools"]:
        names = ", ".join(report["tools"][:SHOWN_NAMES])
        more = f", … (+{len(report['tools']) - SHOWN_NAMES})" if len(report["tools"]) > SHOWN_NAMES else ""
        lines.append(f"  {'tools':<13}{names}{more}")
    latency = report["latency_ms"]
    if latency:
        samples = ", ".join(f"{sample:g}" for sample in latency["samples"])
        lines.append(f"  {'latency':<13}{latency['method']} median {latency['median']:g} ms ({samples})")
    return lines


def count_text(count: int, kind: str) -> str:
    return f"{count} {kind if count != 1 else kind.removesuffix('s')}"


def _failed_attempts(transport: Mapping[str, Any]) -> list[dict[str, str]]:
    tried = list(transport["tried"])
    return tried[:-1] if transport["name"] else tried


def _capabilities_text(capabilities: Mapping[str, Any]) -> str:
    parts = []
    for name, value in capabilities.items():
        flags = [key for key, flag in value.items() if flag is True] if isinstance(value, dict) else []
        parts.append(f"{name}({', '.join(flags)})" if flags else name)
    return ", ".join(parts)
