"""Running `--check`: every selected profile in parallel, each behind its own error boundary."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import anyio

from ..config.model import AppConfig, Profile
from .conversation import converse
from .network import reach
from .render import build_document, render_json, render_text
from .report import PROG, CheckReport, StepCallback, StepFailed, crashed_report, mask_secrets, profile_secrets

EXIT_OK = 0
EXIT_FAILURE = 1


async def check_profile(profile: Profile, *, on_step: StepCallback | None = None) -> dict[str, Any]:
    """Check one profile end to end and return its report (never raises for a failing server).

    `on_step` is called as each step finishes. Header values and URL credentials are masked in the report;
    `run_check` also masks the configuration's other secrets.
    """
    report = CheckReport(profile, on_step)
    try:
        await reach(profile, report)
        await converse(profile, report)
    except* StepFailed:  # also from inside the conversation's task group
        pass
    else:
        report.data["ok"] = True
    return report.masked()


def run_check(
    config: AppConfig,
    as_json: bool,
    stream: TextIO | None = None,
    *,
    progress: TextIO | None = None,
) -> int:
    """Check every selected profile in parallel, print the reports to `stream` (default stdout); 0 if all OK.

    With `as_json`, one JSON document valid against `schemas/check-report.schema.json`. Progress lines go to
    `progress`, by default stderr when it is a terminal and nowhere otherwise.
    """
    out = stream if stream is not None else sys.stdout
    if progress is None and _is_tty(sys.stderr):
        progress = sys.stderr
    secrets = set(config.secrets)
    for profile in config.profiles:
        secrets.update(profile_secrets(profile))
    on_step = _progress_writer(progress, secrets) if progress is not None else None
    reports = anyio.run(_check_all, config.profiles, on_step)
    document = mask_secrets(build_document(config.profiles, reports), secrets)
    out.write(render_json(document) if as_json else render_text(document))
    out.flush()
    return EXIT_OK if document["ok"] else EXIT_FAILURE


async def _check_all(profiles: tuple[Profile, ...], on_step: StepCallback | None) -> list[dict[str, Any]]:
    reports: list[dict[str, Any] | None] = [None] * len(profiles)

    async def one(index: int, profile: Profile) -> None:
        try:
            reports[index] = await check_profile(profile, on_step=on_step)
        except Exception as exc:  # the per-profile boundary: one broken check must not hide the others
            reports[index] = crashed_report(profile, exc)

    async with anyio.create_task_group() as tg:
        for index, profile in enumerate(profiles):
            tg.start_soon(one, index, profile)
    return [report for report in reports if report is not None]


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _progress_writer(progress: TextIO, secrets: set[str]) -> StepCallback:
    def write(profile_name: str, entry: dict[str, Any]) -> None:
        line = f"{PROG} --check: {profile_name}: {entry['step']} {entry['status']}"
        if entry["status"] == "failed":
            line += f": {entry['detail']}"
        progress.write(mask_secrets(line, secrets) + "\n")
        progress.flush()

    return write
