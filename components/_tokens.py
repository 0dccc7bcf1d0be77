"""Component plumbing: the one rule for type tokens (``mlplatform:index:<Name>``), aliases
for former tokens, and the dependencies a component hands down.

A token that does not depend on the file a component lives in lets the file move without
changing URNs. A component whose token changed lists its former tokens, so an existing
stack keeps its resources (Pulumi carries a parent's aliases down to its children).
"""

from __future__ import annotations

import pulumi

PACKAGE = "mlplatform"


def type_token(name: str) -> str:
    """Return the type token of component ``name`` (``Network`` -> ``mlplatform:index:Network``)."""
    return f"{PACKAGE}:index:{name}"


def with_aliases(opts: pulumi.ResourceOptions | None, *former: str) -> pulumi.ResourceOptions:
    """Return ``opts`` plus an alias for each ``former`` type token of the component."""
    aliases: list[pulumi.Alias | str] = [pulumi.Alias(type_=token) for token in former]
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases))


def depends_on_of(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """The resources ``opts.depends_on`` names, for a component to hand to the children
    that must wait for them: a component's ``depends_on`` does not reach its children."""
    if opts is None or opts.depends_on is None:
        return []
    named = opts.depends_on
    if isinstance(named, pulumi.Resource):
        return [named]
    return [r for r in named if isinstance(r, pulumi.Resource)] if isinstance(named, list) else []
