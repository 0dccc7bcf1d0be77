"""Cluster on the mock engine: encryption, logs, access, OIDC, network add-ons, provider."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import replace

import pulumi
import pytest

from components.foundation.cluster import (
    BOOTSTRAP_ADDONS,
    CONTROL_PLANE_LOG_TYPES,
    Cluster,
    ClusterArgs,
    access_entry_key,
    validate_cluster_args,
)
from infra.offline import ProgramRun, run_program
from tests.components.support import alias_types

ADDONS: Mapping[str, str] = {
    "vpc-cni": "v1.22.4-eksbuild.3",
    "kube-proxy": "v1.35.3-eksbuild.13",
    "eks-pod-identity-agent": "v1.3.10-eksbuild.3",
}
ADMIN = "arn:aws:iam::123456789012:role/platform-admin"
CI = "arn:aws:iam::123456789012:role/ci/deployer"
SUBNETS = ["subnet-1", "subnet-2", "subnet-3"]
DEV = ClusterArgs(
    vpc_id="vpc-1",
    subnet_ids=SUBNETS[:2],
    kubernetes_version="1.35",
    addon_versions=ADDONS,
    cluster_name="ml-dev",
    deletion_protection=False,
    admin_role_arns=[ADMIN],
    endpoint_public_access=True,
    public_access_cidrs=["203.0.113.0/24"],
    log_retention_days=30,
    kms_deletion_window_days=7,
)
PROD = ClusterArgs(
    vpc_id="vpc-1",
    subnet_ids=SUBNETS,
    kubernetes_version="1.35",
    addon_versions=ADDONS,
    cluster_name="ml-prod",
    admin_role_arns=[ADMIN],
    deploy_role_arn=CI,
    private_access_cidrs=["10.50.0.0/16"],
    log_retention_days=365,
)


def _plan(args: ClusterArgs) -> ProgramRun:
    def program() -> None:
        cluster = Cluster("ml", args)
        pulumi.export("kubeconfig", cluster.kubeconfig)
        pulumi.export("endpoint", cluster.endpoint)

    return run_program(program, project="mlplatform", stack="t", config={"aws:region": "us-west-2"})


@pytest.fixture(scope="module", params=[DEV, PROD], ids=["dev", "prod"])
def case(request: pytest.FixtureRequest) -> tuple[ClusterArgs, ProgramRun]:
    return request.param, _plan(request.param)


def _one(run: ProgramRun, type_token: str) -> dict:
    (res,) = run.by_type(type_token)
    return res.inputs


def test_secrets_are_envelope_encrypted_with_a_rotating_customer_key(case) -> None:
    args, run = case
    key = next(k.inputs for k in run.by_type("aws:kms/key:Key") if k.name == "ml-secrets-key")
    assert key["enableKeyRotation"] is True
    assert key["deletionWindowInDays"] == args.kms_deletion_window_days >= 7
    statements = json.loads(key["policy"])["Statement"]
    assert {s["Sid"] for s in statements} == {"AccountAdministration", "ClusterEnvelopeEncryption"}
    cluster = _one(run, "aws:eks/cluster:Cluster")
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster["encryptionConfig"]["provider"]["keyArn"].startswith(
        "arn:aws:kms:us-west-2:123456789012:key/"
    )


def test_all_control_plane_logs_go_to_a_precreated_group_with_retention(case) -> None:
    args, run = case
    cluster = _one(run, "aws:eks/cluster:Cluster")
    assert cluster["enabledClusterLogTypes"] == list(CONTROL_PLANE_LOG_TYPES)
    assert len(set(cluster["enabledClusterLogTypes"])) == 5
    group = _one(run, "aws:cloudwatch/logGroup:LogGroup")
    assert group["name"] == f"/aws/eks/{args.cluster_name}/cluster"
    assert group["retentionInDays"] == args.log_retention_days
    # Encrypted with its own key, which CloudWatch Logs may use for this group only.
    (key,) = [k for k in run.by_type("aws:kms/key:Key") if k.name == "ml-control-plane-logs-key"]
    assert group["kmsKeyId"] == key.outputs["arn"]
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    condition = statements["CloudWatchLogsForTheseGroups"]["Condition"]["ArnEquals"]
    assert condition == {
        "kms:EncryptionContext:aws:logs:arn": (
            f"arn:aws:logs:us-west-2:123456789012:log-group:/aws/eks/{args.cluster_name}/cluster"
        )
    }


def test_endpoint_access_and_authentication(case) -> None:
    args, run = case
    cluster = _one(run, "aws:eks/cluster:Cluster")
    vpc = cluster["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is args.endpoint_public_access
    if args.endpoint_public_access:
        assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]
    else:
        assert "publicAccessCidrs" not in vpc
    assert cluster["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert cluster["version"] == "1.35"
    assert cluster["name"] == args.cluster_name


def test_support_type_is_explicit_and_deletion_protection_follows_args(case) -> None:
    args, run = case
    cluster = _one(run, "aws:eks/cluster:Cluster")
    assert cluster["upgradePolicy"] == {"supportType": "STANDARD"}
    assert cluster["deletionProtection"] is args.deletion_protection


def test_admin_access_entries_are_keyed_by_role_not_position(case) -> None:
    args, run = case
    entries = run.by_type("aws:eks/accessEntry:AccessEntry")
    assocs = run.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    admins = [*args.admin_role_arns, *([args.deploy_role_arn] if args.deploy_role_arn else [])]
    assert sorted(e.inputs["principalArn"] for e in entries) == sorted(admins)
    for arn in admins:
        name = f"ml-admin-{access_entry_key(arn)}"
        assert any(e.name == name for e in entries)
        (assoc,) = [a for a in assocs if a.name == name]
        assert assoc.inputs["policyArn"].endswith(
            ":cluster-access-policy/AmazonEKSClusterAdminPolicy"
        )
        assert assoc.inputs["accessScope"] == {"type": "cluster"}
    assert access_entry_key(CI).startswith("deployer-")
    assert access_entry_key(ADMIN) != access_entry_key(CI)


def test_cluster_role_has_only_the_cluster_policy(case) -> None:
    _, run = case
    role = next(r for r in run.by_type("aws:iam/role:Role") if r.name == "ml-cluster-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "eks.amazonaws.com"}
    attached = [
        a.inputs["policyArn"]
        for a in run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.parent == run.by_type("mlplatform:index:Cluster")[0].urn
    ]
    assert attached == ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]


def test_security_group_allows_only_listed_private_clients(case) -> None:
    args, run = case
    sg = _one(run, "aws:ec2/securityGroup:SecurityGroup")
    assert sg["egress"] == []
    cidrs = [c for rule in sg["ingress"] for c in rule["cidrBlocks"]]
    assert cidrs == list(args.private_access_cidrs)


def test_oidc_provider_for_irsa(case) -> None:
    _, run = case
    oidc = _one(run, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"]
    assert oidc["url"].startswith("https://oidc.eks.us-west-2.amazonaws.com/id/")
    assert len(oidc["thumbprintLists"]) == 1 and len(oidc["thumbprintLists"][0]) == 40


def test_network_addons_are_pinned_and_the_cni_has_its_own_role(case) -> None:
    _, run = case
    addons = {a.inputs["addonName"]: a for a in run.by_type("aws:eks/addon:Addon")}
    assert set(addons) == set(BOOTSTRAP_ADDONS)
    for name, addon in addons.items():
        assert addon.inputs["addonVersion"] == ADDONS[name]
        assert addon.inputs["clusterName"] == _one(run, "aws:eks/cluster:Cluster")["name"]
        assert addon.inputs["resolveConflictsOnUpdate"] == "OVERWRITE"
    cni = addons["vpc-cni"].inputs["serviceAccountRoleArn"]
    (irsa,) = run.by_type("mlplatform:index:ServiceAccountRole")
    role = next(r for r in run.by_type("aws:iam/role:Role") if r.parent == irsa.urn)
    assert cni.startswith(f"arn:aws:iam::123456789012:role/{role.name}-")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    host = _one(run, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")["url"][8:]
    assert trust["Condition"]["StringEquals"] == {
        f"{host}:sub": "system:serviceaccount:kube-system:aws-node",
        f"{host}:aud": "sts.amazonaws.com",
    }
    (policy,) = [
        a.inputs["policyArn"]
        for a in run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.parent == irsa.urn
    ]
    assert policy == "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
    for other in ("kube-proxy", "eks-pod-identity-agent"):
        assert "serviceAccountRoleArn" not in addons[other].inputs


def test_kubeconfig_is_secret_and_drives_the_kubernetes_provider(case) -> None:
    args, run = case
    assert "kubeconfig" in run.secret_outputs
    kubeconfig = json.loads(run.outputs["kubeconfig"])
    cluster_entry = kubeconfig["clusters"][0]["cluster"]
    assert cluster_entry["server"] == run.outputs["endpoint"]
    assert cluster_entry["certificate-authority-data"]
    exec_ = kubeconfig["users"][0]["user"]["exec"]
    assert exec_["command"] == "aws"
    assert exec_["args"] == [
        "eks",
        "get-token",
        "--cluster-name",
        args.cluster_name,
        "--region",
        "us-west-2",
    ]
    (provider,) = run.by_type("pulumi:providers:kubernetes")
    assert "kubeconfig" in provider.secret_inputs
    assert json.loads(provider.inputs["kubeconfig"]) == kubeconfig


def test_children_are_parented_and_none_made_in_apply(case) -> None:
    _, run = case
    (component,) = run.by_type("mlplatform:index:Cluster")
    (irsa,) = run.by_type("mlplatform:index:ServiceAccountRole")
    mine = [r for r in run.resources if r.name.startswith("ml-")]
    for res in mine:
        if res is component:
            continue
        assert res.parent in (component.urn, irsa.urn), res.urn
    assert irsa.parent == component.urn
    assert run.created_in_callbacks == []


def test_the_former_type_token_is_an_alias(case) -> None:
    _, run = case
    (component,) = run.by_type("mlplatform:index:Cluster")
    assert alias_types(component) == {"mlplatform:cluster:Cluster"}


TODAY = dt.date(2026, 12, 1)


@pytest.mark.parametrize(
    ("version", "support", "today", "allowed"),
    [
        ("1.35", "STANDARD", TODAY, True),
        ("1.34", "STANDARD", TODAY, True),  # standard support ends 2026-12-02
        ("1.34", "STANDARD", dt.date(2026, 12, 2), False),
        ("1.34", "EXTENDED", dt.date(2026, 12, 2), True),
        ("1.33", "STANDARD", TODAY, False),
        ("1.33", "EXTENDED", TODAY, True),
        ("1.36", "STANDARD", dt.date(2026, 5, 1), False),  # not released on EKS yet
        ("1.31", "EXTENDED", TODAY, False),  # not in the calendar
    ],
)
def test_only_versions_in_support_today(
    version: str, support: str, today: dt.date, allowed: bool
) -> None:
    minor = version.split(".")[1]
    args = replace(
        PROD,
        kubernetes_version=version,
        support_type=support,  # type: ignore[arg-type]
        addon_versions={**ADDONS, "kube-proxy": f"v1.{minor}.0-eksbuild.1"},
    )
    problems = [
        p for p in validate_cluster_args(args, today=today) if p.field == "kubernetes_version"
    ]
    assert (problems == []) is allowed, problems


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kubernetes_version": "latest"}, "kubernetes_version"),
        ({"addon_versions": {k: v for k, v in ADDONS.items() if k != "vpc-cni"}}, "addon_versions"),
        ({"addon_versions": {**ADDONS, "kube-proxy": "v1.34.1-eksbuild.2"}}, "kube-proxy"),
        ({"support_type": "FOREVER"}, "support_type"),
        ({"deploy_role_arn": "arn:aws:iam::123456789012:user/ci"}, "deploy_role_arn"),
        ({"addon_versions": {**ADDONS, "vpc-cni": "latest"}}, "addon_versions"),
        ({"addon_versions": {**ADDONS, "istio": "v1.0.0-eksbuild.1"}}, "addon_versions"),
        ({"endpoint_public_access": True, "public_access_cidrs": []}, "public_access_cidrs"),
        (
            {"endpoint_public_access": True, "public_access_cidrs": ["10.0.0.0/33"]},
            "public_access_cidrs",
        ),
        ({"public_access_cidrs": ["203.0.113.0/24"]}, "public_access_cidrs"),
        ({"private_access_cidrs": ["nope"]}, "private_access_cidrs"),
        ({"admin_role_arns": ["arn:aws:iam::123456789012:user/bob"]}, "admin_role_arns"),
        ({"admin_role_arns": [ADMIN, ADMIN]}, "admin_role_arns"),
        ({"log_retention_days": 42}, "log_retention_days"),
        ({"kms_deletion_window_days": 3}, "kms_deletion_window_days"),
        ({"cluster_name": "bad name"}, "cluster_name"),
    ],
)
def test_invalid_args_are_rejected_naming_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Cluster("ml", replace(PROD, **changes))
