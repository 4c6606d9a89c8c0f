"""A bound on YAML alias expansion, checked on the composed node graph before any value is built.

Aliases share nodes, so a few hundred bytes can describe billions of values ("billion laughs"); building
them, or walking them later (validation, digests), would take the machine's memory.
"""

from __future__ import annotations

from typing import Any

from mcp_sse_proxy.config.errors import ConfigError

#: Nodes a file may expand to once its aliases are followed: far above any real profile file, far below
#: what a few hundred bytes of nested aliases ("billion laughs") would build.
MAX_EXPANDED_NODES = 20_000


def check_expansion(path: str, root: Any) -> None:
    """Refuse a document whose aliases expand to more than MAX_EXPANDED_NODES nodes, or refer to themselves.

    The composed node graph shares aliased nodes, so it is small; its expanded size is summed bottom-up
    with each node's size computed once, so the check itself stays linear in the file.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            if sizes[key] > MAX_EXPANDED_NODES:
                raise ConfigError(
                    [
                        f"{f'{path}:{node.start_mark.line + 1}'}: YAML aliases expand to more than {MAX_EXPANDED_NODES} values; "
                        "refused (write the values out, or use fewer nested aliases)"
                    ]
                )
            continue
        if key in open_nodes:
            raise ConfigError(
                [f"{f'{path}:{node.start_mark.line + 1}'}: a YAML alias refers to a value that contains it"]
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


def _where(path: str, node: Any) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
