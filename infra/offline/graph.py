"""The plan as a Graphviz DOT graph: resources, their dependencies, components as clusters.

``render_dot`` draws every captured resource as a node labelled with its type and name.
An edge points from a resource to each resource it depends on (dependent -> dependency,
the direction ``pulumi stack graph`` uses): read an arrow as "waits for". Each component
is a ``subgraph cluster_<n>`` holding its own node and its children; a nested component
is a nested cluster. Render it with ``dot -Tsvg plan.dot -o plan.svg``.
"""

from __future__ import annotations

from collections.abc import Sequence

from infra.offline.engine import CapturedResource


def quote(text: str) -> str:
    """Return ``text`` as a DOT double-quoted ID (backslashes and quotes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node(resource: CapturedResource, indent: str) -> str:
    label = quote(f"{resource.type}\n{resource.name}").replace("\n", "\\n")
    shape = "box" if resource.custom else "folder"
    return f"{indent}{quote(resource.urn)} [label={label}, shape={shape}];"


def render_dot(resources: Sequence[CapturedResource], *, title: str = "plan") -> str:
    """Return the DOT text of ``resources`` (in their order, so the output is stable)."""
    known = {r.urn for r in resources}
    children: dict[str | None, list[CapturedResource]] = {}
    for r in resources:
        # A parent outside the list (e.g. the root stack) puts the resource at the top.
        parent = r.parent if r.parent in known else None
        children.setdefault(parent, []).append(r)
    lines = [f"digraph {quote(title)} {{", '  node [fontname="Helvetica", fontsize=10];']
    clusters = 0

    def place(parent: str | None, depth: int) -> None:
        nonlocal clusters
        indent = "  " * depth
        for r in children.get(parent, []):
            if r.custom:
                lines.append(_node(r, indent))
                continue
            lines.append(f"{indent}subgraph cluster_{clusters} {{")
            clusters += 1
            lines.append(f"{indent}  label={quote(f'{r.type} {r.name}')};")
            lines.append(_node(r, indent + "  "))
            place(r.urn, depth + 1)
            lines.append(f"{indent}}}")

    place(None, 1)
    for r in resources:
        for dependency in sorted(r.dependencies & known):
            lines.append(f"  {quote(r.urn)} -> {quote(dependency)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
