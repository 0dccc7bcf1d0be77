"""The one rule for component type tokens: ``mlplatform:index:<Name>``.

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
