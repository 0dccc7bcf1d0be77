"""The fakes: realistic, deterministic answers per type token, and the registry behind them."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
import pytest

from infra.offline import PlatformMocks, run_program
from infra.offline.fakes import FakeResource, Registry
from infra.offline.fakes.kubernetes import BUILTIN_GROUPS, is_custom_resource
from infra.offline.fakes.platform import RESOURCES


def _call(token: str, args: dict | None = None, region: str = "us-west-2") -> dict:
    result, failures = PlatformMocks(region=region).call(
        pulumi.runtime.MockCallArgs(token=token, args=args or {}, provider="")
    )
    assert failures == []
    return result


def test_unknown_data_source_names_the_token_and_the_module() -> None:
    def program() -> None:
        aws.ec2.get_vpc(default=True)

    with pytest.raises(Exception, match=r"aws:ec2/getVpc:getVpc") as info:
        run_program(program, project="mlplatform", stack="dev", config={})
    assert "infra/offline/fakes/calls.py" in str(info.value)
    with pytest.raises(NotImplementedError, match=r"'aws:ec2/getVpc:getVpc'.*fakes/calls\.py"):
        PlatformMocks().call(
            pulumi.runtime.MockCallArgs(token="aws:ec2/getVpc:getVpc", args={}, provider="")
        )


def test_eks_cluster_outputs_are_realistic() -> None:
    def program() -> None:
        c = aws.eks.Cluster(
            "c",
            name="ml",
            role_arn="arn:aws:iam::123456789012:role/r",
            vpc_config={"subnet_ids": []},
        )
        pulumi.export("endpoint", c.endpoint)
        pulumi.export("ca", c.certificate_authority.apply(lambda ca: ca.data))
        pulumi.export("issuer", c.identities.apply(lambda i: i[0].oidcs[0].issuer))  # type: ignore[index]
        pulumi.export("arn", c.arn)

    run = run_program(program, project="p", stack="s", config={"aws:region": "eu-west-1"})
    out = run.outputs
    assert re.fullmatch(
        r"https://[0-9A-F]{32}\.gr7\.eu-west-1\.eks\.amazonaws\.com", out["endpoint"]
    )
    assert re.fullmatch(
        r"https://oidc\.eks\.eu-west-1\.amazonaws\.com/id/[0-9A-F]{32}", out["issuer"]
    )
    assert base64.b64decode(out["ca"]).startswith(b"-----BEGIN CERTIFICATE-----")
    assert out["arn"] == "arn:aws:eks:eu-west-1:123456789012:cluster/ml"


def test_policy_document_call_renders_iam_json() -> None:
    result = _call(
        "aws:iam/getPolicyDocument:getPolicyDocument",
        {
            "statements": [
                {
                    "effect": "Allow",
                    "actions": ["s3:GetObject"],
                    "resources": ["arn:aws:s3:::b/*"],
                    "principals": [{"type": "Service", "identifiers": ["eks.amazonaws.com"]}],
                    "conditions": [
                        {"test": "StringEquals", "variable": "aws:SourceAccount", "values": ["1"]}
                    ],
                }
            ]
        },
    )
    assert json.loads(result["json"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*",
                "Principal": {"Service": "eks.amazonaws.com"},
                "Condition": {"StringEquals": {"aws:SourceAccount": "1"}},
            }
        ],
    }
    assert json.loads(result["minifiedJson"]) == json.loads(result["json"])


def test_availability_zones_follow_the_region() -> None:
    result = _call("aws:index/getAvailabilityZones:getAvailabilityZones")
    assert result["names"] == ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]
    assert result["zoneIds"][0] == "usw2-az1"
    elsewhere = _call("aws:index/getAvailabilityZones:getAvailabilityZones", region="eu-west-1")
    assert len(elsewhere["names"]) == 3


def test_answers_depend_on_type_and_name_only() -> None:
    mocks = PlatformMocks()

    def new(name: str, inputs: dict) -> tuple[str | None, dict]:
        return mocks.new_resource(
            pulumi.runtime.MockResourceArgs(typ="aws:ec2/vpc:Vpc", name=name, inputs=inputs)
        )

    first_id, first = new("net", {"cidrBlock": "10.0.0.0/16"})
    again_id, again = new("net", {"cidrBlock": "10.9.0.0/16", "tags": {"a": "b"}})
    other_id, _ = new("other", {"cidrBlock": "10.0.0.0/16"})
    assert first_id == again_id and first_id != other_id
    assert first["defaultSecurityGroupId"] == again["defaultSecurityGroupId"]
    assert again["cidrBlock"] == "10.9.0.0/16"  # inputs are echoed over the computed ones


def test_providers_and_unknown_packages_get_ids() -> None:
    for token in ("pulumi:providers:aws", "pulumi:providers:kubernetes", "other:index:Thing"):
        fake = RESOURCES.find(token)
        assert fake is not None
        answer = fake(FakeResource(token, "x", {}, "us-west-2", "123456789012"))
        assert re.fullmatch(r"x-[0-9a-f]{8}", answer["id"]), token


def test_random_values_have_the_asked_length() -> None:
    def program() -> None:
        pulumi.export("long", random.RandomPassword("db", length=40).result)
        pulumi.export("short", random.RandomPassword("api", length=12).result)
        pulumi.export("hex", random.RandomId("suffix", byte_length=4).hex)

    first = run_program(program, project="p", stack="s", config={}).outputs
    assert len(first["long"]) == 40 and len(first["short"]) == 12
    assert re.fullmatch(r"[0-9a-f]{8}", first["hex"])
    assert run_program(program, project="p", stack="s", config={}).outputs == first


# --- Kubernetes ---------------------------------------------------------------------


def _k8s_run(program) -> dict[str, dict]:
    run = run_program(program, project="mlplatform", stack="dev", config={})
    return {r.name: r.outputs for r in run.resources}


def test_helm_release_reports_a_first_install() -> None:
    def program() -> None:
        k8s.helm.v3.Release(
            "karpenter",
            name="karpenter",
            chart="oci://public.ecr.aws/karpenter/karpenter",
            version="1.8.1",
            namespace="kube-system",
            values={"replicas": 2},
        )

    release = _k8s_run(program)["karpenter"]
    assert release["status"] == {
        "name": "karpenter",
        "namespace": "kube-system",
        "chart": "karpenter",
        "version": "1.8.1",
        "status": "deployed",
        "revision": 1,
    }
    assert release["values"] == {"replicas": 2}


def test_namespace_is_active_and_core_objects_get_metadata() -> None:
    def program() -> None:
        k8s.core.v1.Namespace("ml", metadata={"name": "ml"})
        k8s.core.v1.ConfigMap("settings", metadata={"namespace": "ml"}, data={"a": "b"})
        k8s.core.v1.ServiceAccount("plain")

    out = _k8s_run(program)
    assert out["ml"]["status"] == {"phase": "Active"}
    assert out["ml"]["metadata"]["name"] == "ml"
    assert "namespace" not in out["ml"]["metadata"]  # cluster-scoped
    settings = out["settings"]["metadata"]
    assert settings["namespace"] == "ml"
    assert re.fullmatch(r"settings-[0-9a-f]{8}", settings["name"])
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", settings["uid"])
    assert out["settings"]["data"] == {"a": "b"}
    assert out["plain"]["metadata"]["namespace"] == "default"


def test_custom_resources_echo_their_spec_with_metadata_and_an_empty_status() -> None:
    spec = {"template": {"spec": {"nodeClassRef": {"name": "default"}}}, "limits": {"cpu": 100}}

    def program() -> None:
        k8s.apiextensions.CustomResource(
            "gpu-pool",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata={"name": "gpu"},
            spec=spec,
        )
        k8s.apiextensions.CustomResource(
            "tls",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata={"name": "tls", "namespace": "istio-system"},
            spec={"secretName": "tls"},
        )

    run = run_program(program, project="mlplatform", stack="dev", config={})
    pool, cert = run.resources
    assert pool.type == "kubernetes:karpenter.sh/v1:NodePool"
    assert pool.outputs["spec"] == spec
    assert pool.outputs["status"] == {}
    metadata = pool.outputs["metadata"]
    assert metadata["name"] == "gpu" and metadata["generation"] == 1 and metadata["uid"]
    assert "namespace" not in metadata  # scope unknown offline: only a given namespace
    assert pool.id == "gpu"
    assert cert.outputs["metadata"]["namespace"] == "istio-system"
    assert cert.outputs["status"] == {}


def test_custom_resource_detection_uses_the_group_not_a_suffix() -> None:
    assert is_custom_resource("kubernetes:karpenter.sh/v1:NodePool")
    assert is_custom_resource("kubernetes:gateway.networking.k8s.io/v1:Gateway")
    assert not is_custom_resource("kubernetes:networking.k8s.io/v1:Ingress")
    assert not is_custom_resource("kubernetes:core/v1:Secret")
    assert not is_custom_resource("kubernetes:helm.sh/v3:Release")


def test_builtin_groups_cover_every_group_the_kubernetes_sdk_registers() -> None:
    import pulumi_kubernetes

    source = Path(pulumi_kubernetes.__file__).read_text(encoding="utf-8")
    table = re.search(r'resource_modules="""(.*?)"""', source, re.DOTALL)
    assert table is not None, "the SDK's module table moved: update this test"
    registered = json.loads(table.group(1))
    groups = {module["mod"].split("/")[0] for module in registered}
    assert groups, "the SDK's module table moved: update this test"
    assert groups <= BUILTIN_GROUPS, groups - BUILTIN_GROUPS


# --- the registry -------------------------------------------------------------------


def _answer(_: FakeResource) -> dict:
    return {}


def test_registry_prefers_the_exact_token_then_the_longest_prefix() -> None:
    registry: Registry = Registry("here.py")

    @registry.fallback("aws:")
    def any_aws(_: FakeResource) -> dict:
        return {}

    @registry.fallback("aws:ec2/")
    def any_ec2(_: FakeResource) -> dict:
        return {}

    @registry.register("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet")
    def network(_: FakeResource) -> dict:
        return {}

    assert registry.find("aws:ec2/vpc:Vpc") is network
    assert registry.find("aws:ec2/subnet:Subnet") is network
    assert registry.find("aws:ec2/eip:Eip") is any_ec2
    assert registry.find("aws:s3/bucket:Bucket") is any_aws
    assert registry.find("kubernetes:core/v1:Pod") is None


def test_a_token_answered_twice_is_refused_naming_both() -> None:
    first: Registry = Registry("a.py")
    first.register("aws:ec2/vpc:Vpc")(_answer)
    with pytest.raises(ValueError, match=r"a\.py: token 'aws:ec2/vpc:Vpc' is answered twice"):
        first.register("aws:ec2/vpc:Vpc")(_answer)
    second: Registry = Registry("b.py")
    second.register("aws:ec2/vpc:Vpc")(_answer)
    with pytest.raises(ValueError, match="answered twice"):
        Registry.combine("all", first, second)
    with pytest.raises(ValueError, match="at least one"):
        first.register()


def test_every_ec2_type_with_an_id_prefix_gets_it() -> None:
    from infra.offline.fakes.aws import EC2_ID_PREFIXES

    for token, prefix in EC2_ID_PREFIXES.items():
        fake = RESOURCES.find(token)
        assert fake is not None
        answer = fake(FakeResource(token, "n", {}, "us-west-2", "123456789012"))
        assert answer["id"].startswith(f"{prefix}-"), token
        assert answer["ownerId"] == "123456789012"
