"""Which profile owns a resource URI, and the `alias+scheme:rest` form of a URI two profiles share (pure).

URIs are kept verbatim so links inside results stay valid. Ownership, in this order of precedence:
resources listed by a profile (first in selection order wins), then resource templates (likewise), then
URIs first seen in a profile's results. A profile that uses a URI another one owns sees it exposed as
`alias+uri`, which is itself a valid URI (`+` is allowed in a scheme) and is mapped back by table lookup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_EXPRESSION = re.compile(r"\{([+#./;?&]?)([^}]*)\}")


def template_pattern(template: str) -> re.Pattern[str]:
    """A regex matching the URIs an RFC 6570 template can produce (loosely: one segment per `{var}`)."""
    parts: list[str] = []
    last = 0
    for match in _EXPRESSION.finditer(template):
        parts.append(re.escape(template[last : match.start()]))
        operator = match.group(1)
        if operator in ("+", "#"):
            parts.append(r"[^?]*" if operator == "+" else r".*")
        elif operator in ("?", "&"):
            parts.append(r"(?:[?&][^#]*)?")
        elif operator in ("/", ".", ";"):
            parts.append(r"(?:" + re.escape(operator) + r"[^/?#]*)*")
        else:
            parts.append(r"[^/?#]*")
        last = match.end()
    parts.append(re.escape(template[last:]))
    return re.compile("".join(parts) + r"\Z")


@dataclass(frozen=True, slots=True)
class Owner:
    alias: str
    uri: str


class UriTable:
    """Resource URI ownership across profiles in selection order."""

    def __init__(self, aliases: Sequence[str]) -> None:
        self._aliases = list(aliases)
        self._listed: dict[str, list[str]] = {alias: [] for alias in aliases}
        self._templates: dict[str, list[tuple[str, re.Pattern[str]]]] = {alias: [] for alias in aliases}
        self._seen: dict[str, str] = {}  # uri -> alias, first come
        self._used: dict[str, set[str]] = {alias: set() for alias in aliases}
        self._owner: dict[str, str] = {}
        self._template_owner: dict[str, str] = {}

    # ---- building ---------------------------------------------------------------------------------------

    def set_listed(self, alias: str, uris: Iterable[str], templates: Iterable[str]) -> None:
        """Replace a profile's listed resources and templates (kept while the profile is down)."""
        self._listed[alias] = list(dict.fromkeys(uris))
        self._templates[alias] = [(t, template_pattern(t)) for t in dict.fromkeys(templates)]
        self._rebuild()

    def _rebuild(self) -> None:
        owner: dict[str, str] = {}
        template_owner: dict[str, str] = {}
        for alias in self._aliases:
            for uri in self._listed[alias]:
                owner.setdefault(uri, alias)
            for template, _ in self._templates[alias]:
                template_owner.setdefault(template, alias)
        self._owner = owner
        self._template_owner = template_owner

    # ---- original → exposed -----------------------------------------------------------------------------

    def owner_of(self, uri: str) -> str | None:
        """The alias owning a concrete URI (listed, then templates, then seen), or None."""
        alias = self._owner.get(uri)
        if alias is not None:
            return alias
        for candidate in self._aliases:
            if any(pattern.match(uri) for _, pattern in self._templates[candidate]):
                return candidate
        return self._seen.get(uri)

    def expose(self, alias: str, uri: str) -> str:
        """How profile `alias`'s `uri` is shown to the client; an unowned URI becomes `alias`'s."""
        owner = self.owner_of(uri)
        if owner is None:
            self._seen[uri] = owner = alias
        self._used[alias].add(uri)
        return uri if owner == alias else f"{alias}+{uri}"

    def expose_template(self, alias: str, template: str) -> str:
        owner = self._template_owner.get(template, alias)
        return template if owner == alias else f"{alias}+{template}"

    # ---- exposed → original -----------------------------------------------------------------------------

    def resolve(self, exposed: str) -> Owner | None:
        """The profile and original URI behind an exposed URI or template; None if nobody has it."""
        alias = self._owner.get(exposed) or self._template_owner.get(exposed)
        if alias is not None:
            return Owner(alias, exposed)
        head, plus, rest = exposed.partition("+")
        if plus and head in self._listed and self._knows(head, rest):
            return Owner(head, rest)
        alias = self.owner_of(exposed)
        return Owner(alias, exposed) if alias is not None else None

    def _knows(self, alias: str, uri: str) -> bool:
        return (
            uri in self._listed[alias]
            or any(template == uri or pattern.match(uri) for template, pattern in self._templates[alias])
            or uri in self._used[alias]
        )
