"""IRSA roles on the mock engine: trust pinned to one service account and the STS audience."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.foundation.irsa import ServiceAccountRole, ServiceAccountRoleArgs
from infra.offline import ProgramRun, run_program
from tests.components.support import alias_types


def _irsa_plan(args: ServiceAccountRoleArgs) -> ProgramRun:
    return run_program(
        lambda: ServiceAccountRole("sa", args), project="mlplatform", stack="t", config={}
    )


ISSUER = "https://oidc.eks.us-west-2.amazonaws.com/id/ABC123"
PROVIDER = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC123"


def test_irsa_trust_is_pinned_to_one_service_account_and_the_sts_audience() -> None:
    run = _irsa_plan(
        ServiceAccountRoleArgs(
            oidc_provider_arn=PROVIDER,
            oidc_issuer=pulumi.Output.from_input(ISSUER),
            namespace="serving",
            service_account="inference",
            policy_arns={"read-models": "arn:aws:iam::123456789012:policy/read-models"},
            inline_policies={"kms": '{"Version":"2012-10-17","Statement":[]}'},
        )
    )
    (role,) = run.by_type("aws:iam/role:Role")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": PROVIDER}
    host = "oidc.eks.us-west-2.amazonaws.com/id/ABC123"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{host}:sub": "system:serviceaccount:serving:inference",
            f"{host}:aud": "sts.amazonaws.com",
        }
    }
    (attachment,) = run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.name == "sa-read-models"
    (inline,) = run.by_type("aws:iam/rolePolicy:RolePolicy")
    assert inline.inputs["name"] == "kms"
    (component,) = run.by_type("mlplatform:index:ServiceAccountRole")
    assert alias_types(component) == {"mlplatform:irsa:ServiceAccountRole"}
    assert all(r.parent == component.urn for r in run.resources if r is not component)
    assert run.created_in_callbacks == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"namespace": "Bad_NS"}, "namespace"),
        ({"service_account": ""}, "service_account"),
        ({"policy_arns": {"Not OK": "arn"}}, "policy_arns"),
        ({"inline_policies": {"a b": "{}"}}, "inline_policies"),
        ({"max_session_duration": 60}, "max_session_duration"),
    ],
)
def test_irsa_invalid_args_are_rejected_naming_the_field(changes: dict, field: str) -> None:
    base = {
        "oidc_provider_arn": PROVIDER,
        "oidc_issuer": ISSUER,
        "namespace": "serving",
        "service_account": "inference",
    }
    with pytest.raises(ValueError, match=field):
        ServiceAccountRole("sa", ServiceAccountRoleArgs(**{**base, **changes}))
