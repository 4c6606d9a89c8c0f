"""The merged view of several profiles' tools, prompts, resources and templates (pure).

Each profile's lists are kept as the server sent them (also while the profile is down, so routes and URI
ownership stay stable); the merged lists show the profiles that are up, in selection order, with names
exposed as `alias__name` and shared URIs as `alias+uri`. Results on their way to the client get the same URI
rewriting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..protocol.tool_filter import is_visible
from .cursors import list_version
from .names import NameTable
from .uris import UriTable

#: List kinds, as the key of the list in its result.
TOOLS = "tools"
PROMPTS = "prompts"
RESOURCES = "resources"
TEMPLATES = "resourceTemplates"
KINDS = (TOOLS, PROMPTS, RESOURCES, TEMPLATES)

LIST_METHODS = {
    TOOLS: "tools/list",
    PROMPTS: "prompts/list",
    RESOURCES: "resources/list",
    TEMPLATES: "resources/templates/list",
}
KIND_OF_METHOD = {method: kind for kind, method in LIST_METHODS.items()}
#: The server capability announcing each list.
CAPABILITY = {TOOLS: "tools", PROMPTS: "prompts", RESOURCES: "resources", TEMPLATES: "resources"}
CHANGE_NOTIFICATION = {
    TOOLS: "notifications/tools/list_changed",
    PROMPTS: "notifications/prompts/list_changed",
    RESOURCES: "notifications/resources/list_changed",
    TEMPLATES: "notifications/resources/list_changed",
}
KINDS_OF_NOTIFICATION = {
    "notifications/tools/list_changed": (TOOLS,),
    "notifications/prompts/list_changed": (PROMPTS,),
    "notifications/resources/list_changed": (RESOURCES, TEMPLATES),
}


@dataclass(frozen=True, slots=True)
class Source:
    """What the catalog needs to know of one profile."""

    alias: str
    max_name_length: int = 64
    include_tools: tuple[str, ...] = ()
    exclude_tools: tuple[str, ...] = ()


def _named(items: Sequence[Any], key: str) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict) and isinstance(item.get(key), str)]


class MergedLists:
    def __init__(self, sources: Sequence[Source]) -> None:
        self._sources = {source.alias: source for source in sources}
        self._order = [source.alias for source in sources]
        self._lists: dict[str, dict[str, list[dict[str, Any]]]] = {alias: {} for alias in self._order}
        self._up: dict[str, bool] = dict.fromkeys(self._order, False)
        self.tools = NameTable()
        self.prompts = NameTable()
        self.uris = UriTable(self._order)

    # ---- updates ----------------------------------------------------------------------------------------

    def set_list(self, alias: str, kind: str, items: Sequence[Any]) -> None:
        """Replace one profile's list of `kind` with what its server sent."""
        source = self._sources[alias]
        if kind == TOOLS:
            tools = [
                item
                for item in _named(items, "name")
                if is_visible(item["name"], source.include_tools, source.exclude_tools)
            ]
            self._lists[alias][TOOLS] = tools
            self.tools.set_profile(alias, (t["name"] for t in tools), source.max_name_length)
        elif kind == PROMPTS:
            prompts = _named(items, "name")
            self._lists[alias][PROMPTS] = prompts
            self.prompts.set_profile(alias, (p["name"] for p in prompts), source.max_name_length)
        elif kind in (RESOURCES, TEMPLATES):
            self._lists[alias][kind] = _named(items, "uri" if kind == RESOURCES else "uriTemplate")
            lists = self._lists[alias]
            self.uris.set_listed(
                alias,
                (r["uri"] for r in lists.get(RESOURCES, [])),
                (t["uriTemplate"] for t in lists.get(TEMPLATES, [])),
            )
        else:
            raise ValueError(f"unknown list kind {kind!r}")

    def set_up(self, alias: str, up: bool) -> None:
        """Whether a profile's lists are shown (its routes stay either way)."""
        self._up[alias] = up

    def is_up(self, alias: str) -> bool:
        return self._up[alias]

    # ---- merged lists -----------------------------------------------------------------------------------

    def listing(self, kind: str) -> list[dict[str, Any]]:
        """The merged list of `kind` the client sees: profiles that are up, in selection order."""
        merged: list[dict[str, Any]] = []
        for alias in self._order:
            if not self._up[alias]:
                continue
            for item in self._lists[alias].get(kind, []):
                merged.append(self._expose_item(alias, kind, item))
        return merged

    def version(self, kind: str) -> str:
        return list_version(self.listing(kind))

    def versions(self) -> dict[str, str]:
        return {kind: self.version(kind) for kind in KINDS}

    def _expose_item(self, alias: str, kind: str, item: dict[str, Any]) -> dict[str, Any]:
        exposed = dict(item)
        if kind == TOOLS:
            exposed["name"] = self.tools.exposed(alias, item["name"]) or item["name"]
        elif kind == PROMPTS:
            exposed["name"] = self.prompts.exposed(alias, item["name"]) or item["name"]
        elif kind == RESOURCES:
            exposed["uri"] = self.uris.expose(alias, item["uri"])
        else:
            exposed["uriTemplate"] = self.uris.expose_template(alias, item["uriTemplate"])
        return exposed

    # ---- results ----------------------------------------------------------------------------------------

    def expose_uri(self, alias: str, uri: str) -> str:
        return self.uris.expose(alias, uri)

    def expose_result(self, alias: str, method: str, result: Any) -> Any:
        """`result` of `method` from `alias` with every resource URI shown as the client must see it."""
        if not isinstance(result, dict):
            return result
        if method == "tools/call":
            content = result.get("content")
            if isinstance(content, list) and any(_has_uri(block) for block in content):
                result = dict(result)
                result["content"] = [self._expose_block(alias, block) for block in content]
        elif method == "prompts/get":
            messages = result.get("messages")
            if isinstance(messages, list):
                result = dict(result)
                result["messages"] = [self._expose_prompt_message(alias, m) for m in messages]
        elif method == "resources/read":
            contents = result.get("contents")
            if isinstance(contents, list):
                result = dict(result)
                result["contents"] = [self._expose_contents(alias, c) for c in contents]
        return result

    def _expose_prompt_message(self, alias: str, message: Any) -> Any:
        if not isinstance(message, dict):
            return message
        content = message.get("content")
        if isinstance(content, list):
            return {**message, "content": [self._expose_block(alias, block) for block in content]}
        if _has_uri(content):
            return {**message, "content": self._expose_block(alias, content)}
        return message

    def _expose_block(self, alias: str, block: Any) -> Any:
        if not isinstance(block, dict):
            return block
        if block.get("type") == "resource_link" and isinstance(block.get("uri"), str):
            return {**block, "uri": self.uris.expose(alias, block["uri"])}
        if block.get("type") == "resource" and isinstance(block.get("resource"), dict):
            return {**block, "resource": self._expose_contents(alias, block["resource"])}
        return block

    def _expose_contents(self, alias: str, contents: Any) -> Any:
        if isinstance(contents, dict) and isinstance(contents.get("uri"), str):
            return {**contents, "uri": self.uris.expose(alias, contents["uri"])}
        return contents


def _has_uri(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") in ("resource_link", "resource")
