"""A scripted browser for in-process tests: follows redirects and submits the self-submitting forms the test
OpenID provider serves (its device-code pages), keeping cookies, until it reaches a given URL prefix.

`walk(url, stop_at=...)` stops at the first redirect target starting with `stop_at` (a loopback callback) without
fetching it, or at the first page that is neither a redirect nor a self-submitting form. Every walk is bounded
in steps and time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx2

MAX_STEPS = 25
TIMEOUT = 10.0


@dataclass(frozen=True)
class Arrival:
    """Where a walk ended: `url`, and the page there (`status` is None when it stopped at a redirect)."""

    url: str
    status: int | None = None
    text: str = ""


@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """The first form of a page and its hidden inputs; whether the page submits it by script."""

    def __init__(self) -> None:
        super().__init__()
        self.form: _Form | None = None
        self.in_first_form = False
        self.submits_itself = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and self.form is None:
            self.form = _Form(values.get("action", ""), values.get("method", "get").lower())
            self.in_first_form = True
        elif tag == "input" and self.in_first_form and values.get("type") == "hidden" and self.form:
            self.form.fields[values.get("name", "")] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_first_form = False

    def handle_data(self, data: str) -> None:
        if "forms[0].submit()" in data:
            self.submits_itself = True


def self_submitting_form(html: str) -> _Form | None:
    """The form a browser with scripts on would submit at once, if the page has one."""
    parser = _FormParser()
    parser.feed(html)
    return parser.form if parser.submits_itself else None


async def walk(url: str, *, stop_at: str | None = None, client: httpx2.AsyncClient | None = None) -> Arrival:
    """Browse from `url` to the first redirect target starting with `stop_at`, or to the first ordinary page.

    Raises AssertionError when the walk does not settle within MAX_STEPS requests."""
    own_client = client is None
    client = client or httpx2.AsyncClient(follow_redirects=False, timeout=TIMEOUT)
    try:
        response = await client.get(url)
        for _ in range(MAX_STEPS):
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if stop_at is not None and target.startswith(stop_at):
                    return Arrival(target)
                response = await client.get(target)
                continue
            form = self_submitting_form(response.text) if response.status_code == 200 else None
            if form is None:
                return Arrival(str(response.url), response.status_code, response.text)
            action = urljoin(str(response.url), form.action)
            response = await client.request(form.method.upper(), action, data=form.fields)
        raise AssertionError(f"browsing from {url} did not settle within {MAX_STEPS} steps")
    finally:
        if own_client:
            await client.aclose()
