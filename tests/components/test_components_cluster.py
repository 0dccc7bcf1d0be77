"""Cluster and IRSA on the mock engine: encryption, logs, access, OIDC, add-ons, provider."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pytest

from components.cluster import (
    CONTROL_PLANE_LOG_TYPES,
    REQUIRED_ADDONS,
    Cluster,
    ClusterArgs,
    access_entry_key,
)
from components.irsa import ServiceAccountRole, ServiceAccountRoleArgs
from infra.offline import ProgramRun, run_program

ADDONS: Mapping[str, str] = {
    "vpc-cni": "v1.19.5-eksbuild.1",
    "kube-proxy": "v1.33.0-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.7-eksbuild.2",
    "coredns": "v1.12.1-eksbuild.2",
    "aws-ebs-csi-driver": "v1.44.0-eksbuild.1",
}
ADMIN = "arn:aws:iam::123456789012:role/platform-admin"
CI = "arn:aws:iam::123456789012:role/ci/deployer"
SUBNETS = ["subnet-1", "subnet-2", "subnet-3"]
DEV = ClusterArgs(
    vpc_id="vpc-1",
    subnet_ids=SUBNETS[:2],
    kubernetes_version="1.33",
    addon_versions=ADDONS,
    cluster_name="ml-dev",
    admin_role_arns=[ADMIN],
    endpoint_public_access=True,
    public_access_cidrs=["203.0.113.0/24"],
    log_retention_days=30,
    kms_deletion_window_days=7,
)
PROD = ClusterArgs(
    vpc_id="vpc-1",
    subnet_ids=SUBNETS,
    kubernetes_version="1.33",
    addon_versions=ADDONS,
    cluster_name="ml-prod",
    admin_role_arns=[ADMIN, CI],
    private_access_cidrs=["10.50.0.0/16"],
    log_retention_days=365,
)


def _plan(args: ClusterArgs, *, node_addons: bool = True) -> ProgramRun:
    def program() -> None:
        cluster = Cluster("ml", args)
        nodes = pulumi.ComponentResource("mlplatform:test:Nodes", "nodes")
        if node_addons:
            cluster.add_node_addons(depends_on=[nodes])
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
    key = _one(run, "aws:kms/key:Key")
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
    assert cluster["version"] == "1.33"
    assert cluster["name"] == args.cluster_name


def test_admin_access_entries_are_keyed_by_role_not_position(case) -> None:
    args, run = case
    entries = run.by_type("aws:eks/accessEntry:AccessEntry")
    assocs = run.by_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert sorted(e.inputs["principalArn"] for e in entries) == sorted(args.admin_role_arns)
    for arn in args.admin_role_arns:
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
        if a.parent == run.by_type("mlplatform:cluster:Cluster")[0].urn
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


def test_addons_are_pinned_and_node_addons_wait_for_nodes(case) -> None:
    _, run = case
    addons = {a.inputs["addonName"]: a for a in run.by_type("aws:eks/addon:Addon")}
    assert set(addons) == set(REQUIRED_ADDONS)
    for name, addon in addons.items():
        assert addon.inputs["addonVersion"] == ADDONS[name]
        assert addon.inputs["clusterName"] == _one(run, "aws:eks/cluster:Cluster")["name"]
        assert addon.inputs["resolveConflictsOnUpdate"] == "OVERWRITE"
    ebs = addons["aws-ebs-csi-driver"].inputs["serviceAccountRoleArn"]
    (irsa,) = run.by_type("mlplatform:irsa:ServiceAccountRole")
    role = next(r for r in run.by_type("aws:iam/role:Role") if r.parent == irsa.urn)
    assert ebs.startswith(f"arn:aws:iam::123456789012:role/{role.name}-")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    host = _one(run, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")["url"][8:]
    assert trust["Condition"]["StringEquals"] == {
        f"{host}:sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
        f"{host}:aud": "sts.amazonaws.com",
    }
    (policy,) = [
        a.inputs["policyArn"]
        for a in run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.parent == irsa.urn
    ]
    assert policy == "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


def test_without_node_addons_only_bootstrap_addons_exist() -> None:
    run = _plan(PROD, node_addons=False)
    names = {a.inputs["addonName"] for a in run.by_type("aws:eks/addon:Addon")}
    assert names == {"vpc-cni", "kube-proxy", "eks-pod-identity-agent"}


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
    (component,) = run.by_type("mlplatform:cluster:Cluster")
    (irsa,) = run.by_type("mlplatform:irsa:ServiceAccountRole")
    mine = [r for r in run.resources if r.name.startswith("ml-")]
    for res in mine:
        if res is component:
            continue
        assert res.parent in (component.urn, irsa.urn), res.urn
    assert irsa.parent == component.urn
    assert run.created_in_callbacks == []


def test_add_node_addons_twice_is_refused() -> None:
    def program() -> None:
        cluster = Cluster("ml", PROD)
        cluster.add_node_addons(depends_on=[])
        cluster.add_node_addons(depends_on=[])

    with pytest.raises(RuntimeError, match="already called"):
        run_program(program, project="mlplatform", stack="t", config={})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kubernetes_version": "latest"}, "kubernetes_version"),
        ({"addon_versions": {k: v for k, v in ADDONS.items() if k != "coredns"}}, "addon_versions"),
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
    from dataclasses import replace

    with pytest.raises(ValueError, match=field):
        Cluster("ml", replace(PROD, **changes))


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
    (component,) = run.by_type("mlplatform:irsa:ServiceAccountRole")
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
