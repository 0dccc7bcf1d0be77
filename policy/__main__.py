"""The mlplatform CrossGuard policy pack: ``pulumi preview --policy-pack policy``.

Every rule of ``policy.rules`` becomes one policy with its own enforcement level: a
``ResourceValidationPolicy`` for per-resource rules and a ``StackValidationPolicy``
for rules that need several resources. The pack (which starts a gRPC server and
never returns) is built only when this file runs as the program; importing it, as
the tests do, just exposes ``build_policies``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import _DictProxy, _ListProxy

PACK_NAME = "mlplatform"


def _ensure_policy_package() -> None:
    """Make ``policy.rules`` importable when the pack directory runs on its own.

    Inside the repository the ``policy`` package is installed in the virtualenv; a
    published pack is just this directory, so it is registered as ``policy``.
    """
    here = Path(__file__).resolve().parent
    try:
        import policy.rules_base  # noqa: F401

        return
    except ImportError:
        pass
    spec = importlib.util.spec_from_file_location(
        "policy", here / "__init__.py", submodule_search_locations=[str(here)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the policy rules from {here}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["policy"] = module
    spec.loader.exec_module(module)


_ensure_policy_package()

from policy import rules_network, rules_s3  # noqa: E402
from policy.rules import all_rules  # noqa: E402
from policy.rules_base import ResourceRule, StackRule, is_unknown  # noqa: E402

# The prop through which a resource names the one a stack rule judges it with.
REFERENCE_PROPS: dict[str, str] = {
    rules_network.FLOW_LOG: "vpcId",
    rules_network.DEFAULT_SG: "vpcId",
    **{
        token: "bucket"
        for token in rules_s3.SSE_TYPES
        | rules_s3.VERSIONING_TYPES
        | rules_s3.PUBLIC_ACCESS_BLOCK_TYPES
        | rules_s3.POLICY_TYPES
        | rules_s3.LIFECYCLE_TYPES
    },
}

Policy = ResourceValidationPolicy | StackValidationPolicy


def plain(value: Any) -> Any:
    """Copy CrossGuard's unknown-checking proxies into plain dicts and lists.

    The proxies raise on reading an unknown value, which would abort the whole
    policy; the rules instead see the unknown sentinel and judge that one value as
    "cannot judge", so the rest of the resource is still checked.
    """
    if isinstance(value, _DictProxy | _ListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _level(rule: ResourceRule | StackRule) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if rule.level == "mandatory" else EnforcementLevel.ADVISORY


def _resource_validation(
    rule: ResourceRule,
) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.resource_types:
            return
        for message in rule.check(args.resource_type, plain(args.props)):
            report_violation(message, args.urn)

    return validate


def stack_resources(
    args: StackValidationArgs,
) -> tuple[list[tuple[str, str, Mapping[str, Any]]], dict[str, set[str]]]:
    """The stack as (urn, type, props) triples plus aliases learnt from dependencies.

    A reference prop (a flow log's ``vpcId``, a bucket setting's ``bucket``) that
    depends on exactly one resource names that resource: a known value becomes an
    alias of it (its id) and a value unknown in preview is replaced by its urn.
    """
    triples: list[tuple[str, str, Mapping[str, Any]]] = []
    aliases: dict[str, set[str]] = {}
    for resource in args.resources:
        props = plain(resource.props)
        key = REFERENCE_PROPS.get(resource.resource_type)
        deps = resource.property_dependencies.get(key, []) if key else []
        if key and key in props and len(deps) == 1:
            if is_unknown(props[key]):
                props[key] = deps[0].urn
            elif isinstance(props[key], str):
                aliases.setdefault(deps[0].urn, set()).add(props[key])
        triples.append((resource.urn, resource.resource_type, props))
    return triples, aliases


def _stack_validation(rule: StackRule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources, aliases = stack_resources(args)
        for urn, message in rule.check(resources, aliases):
            report_violation(message, urn)

    return validate


def build_policies() -> list[Policy]:
    """One CrossGuard policy per rule, named after the rule, at the rule's level."""
    policies: list[Policy] = []
    for rule in all_rules():
        if isinstance(rule, ResourceRule):
            policies.append(
                ResourceValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=_resource_validation(rule),
                    enforcement_level=_level(rule),
                )
            )
        else:
            policies.append(
                StackValidationPolicy(
                    name=rule.name,
                    description=rule.description,
                    validate=_stack_validation(rule),
                    enforcement_level=_level(rule),
                )
            )
    return policies


if __name__ == "__main__":
    PolicyPack(name=PACK_NAME, policies=list(build_policies()))
