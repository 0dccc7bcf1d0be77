"""Vault on the mock engine: a pinned chart with documented values only, raft HA, the
awskms seal on its own key, TLS from the internal CA, audit storage, and no dev mode or
credential anywhere."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components._k8s import secret_value_paths
from components._validate import ValidationError
from components.services import vault_access as access
from components.services.tenancy import application_namespace
from components.services.vault import VAULT_CHART, Vault, VaultArgs
from infra.offline import CapturedResource, ProgramRun
from tests.components.layout import problems, values_problems
from tests.components.services import vault_values as documented
from tests.components.services.ingress_layout import CERTIFICATE_SPEC
from tests.components.support import assert_valid, one, plan

RELEASE = "kubernetes:helm.sh/v3:Release"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
ISSUER = "https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLE"
ARGS = VaultArgs(
    oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLE",
    oidc_issuer=ISSUER,
    storage_class="gp3-encrypted",
)


def _program(args: VaultArgs) -> None:
    # Stand-ins for what the services stage hands over: cert-manager's release and the
    # ml-serving application namespace.
    cert_manager = k8s.helm.v3.Release(
        "cert-manager", chart="cert-manager", version="v1.21.1", namespace="cert-manager"
    )
    holder = pulumi.ComponentResource("test:index:Holder", "holder")
    serving = application_namespace("ml-serving", parent=holder, mesh=None)
    Vault("vault", replace(args, cert_manager=cert_manager, client_apps=(serving,)))


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return plan(lambda: _program(ARGS))


@pytest.fixture(scope="module")
def dev() -> ProgramRun:
    return plan(lambda: _program(replace(ARGS, replicas=1, data_storage_gib=5)))


def certificates(run: ProgramRun) -> dict[str, CapturedResource]:
    """The cert-manager Certificates, by namespace."""
    return {c.inputs["metadata"]["namespace"]: c for c in run.by_type(CERTIFICATE)}


def server_certificate(run: ProgramRun) -> CapturedResource:
    return certificates(run)["vault"]


def release(run: ProgramRun) -> CapturedResource:
    (found,) = [r for r in run.by_type(RELEASE) if r.inputs.get("name") == "vault"]
    return found


def server(run: ProgramRun) -> dict[str, Any]:
    return release(run).inputs["values"]["server"]


def hcl(run: ProgramRun) -> str:
    return server(run)["ha"]["raft"]["config"]


def setting(config: str, name: str) -> list[str]:
    return re.findall(rf'^\s*{name}\s*=\s*"?([^"\n]*)"?$', config, re.M)


def test_the_chart_is_pinned_and_its_values_documented(prod, dev) -> None:
    assert (VAULT_CHART.repository, VAULT_CHART.chart, VAULT_CHART.version) == (
        documented.VAULT_CHART
    )
    for run in (prod, dev):
        inputs = release(run).inputs
        assert inputs["chart"] == "vault" and inputs["version"] == "0.34.1"
        assert inputs["repositoryOpts"] == {"repo": "https://helm.releases.hashicorp.com"}
        assert inputs["namespace"] == "vault" and inputs["atomic"] is True
        assert values_problems(inputs["values"], documented.VAULT_VALUES, chart="vault") == []
        values = inputs["values"]
        assert values["server"]["image"] == {"repository": "hashicorp/vault", "tag": "2.0.4"}
        assert values["injector"]["agentImage"] == values["server"]["image"]


def test_a_misspelt_key_is_caught_by_the_values_check(prod) -> None:
    values = json.loads(json.dumps(release(prod).inputs["values"], default=str))
    values["server"]["ha"]["raft"]["setNodeID"] = True
    assert values_problems(values, documented.VAULT_VALUES) == [
        "server.ha.raft.setNodeID: not a key the chart documents"
    ]


def test_prod_runs_three_raft_nodes_across_zones_and_dev_one_with_the_same_configuration(
    prod, dev
) -> None:
    for run, replicas in ((prod, 3), (dev, 1)):
        ha = server(run)["ha"]
        assert ha["enabled"] is True and ha["replicas"] == replicas
        assert ha["raft"]["enabled"] is True and ha["raft"]["setNodeId"] is True
        assert ha["disruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
        config = hcl(run)
        assert 'storage "raft"' in config and setting(config, "path") == ["/vault/data"]
        joins = setting(config, "leader_api_addr")
        assert joins == [f"https://vault-{i}.vault-internal:8200" for i in range(replicas)]
        assert setting(config, "leader_ca_cert_file") == ["/vault/userconfig/vault-tls/ca.crt"] * (
            replicas
        )
        (spread,) = server(run)["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert spread["whenUnsatisfiable"] == "DoNotSchedule" and spread["maxSkew"] == 1
    strip = lambda text: re.sub(r"  retry_join \{[^}]*\}\n", "", text)  # noqa: E731
    assert strip(hcl(prod)) == strip(hcl(dev))


def test_the_seal_names_the_new_key_and_the_role_may_use_only_that_key(prod) -> None:
    key = one(prod, "aws:kms/key:Key")
    assert setting(hcl(prod), "kms_key_id") == [key.outputs["keyId"]]
    assert 'seal "awskms"' in hcl(prod) and setting(hcl(prod), "region") == ["us-west-2"]
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    assert key.retain_on_delete, "dropping Vault from the stack must not delete its seal key"
    role = one(prod, "aws:iam/role:Role")
    grant = one(prod, "aws:iam/rolePolicy:RolePolicy")
    (statement,) = json.loads(grant.inputs["policy"])["Statement"]
    assert statement["Effect"] == "Allow" and statement["Resource"] == key.outputs["arn"]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt"]
    admin, seal = json.loads(key.inputs["policy"])["Statement"]
    assert seal["Principal"] == {"AWS": role.outputs["arn"]}
    assert sorted(seal["Action"]) == sorted(statement["Action"])
    # The account administers the key but cannot grant anyone else its use.
    assert admin["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert not {"kms:*", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"} & set(
        admin["Action"]
    )
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]
    host = ISSUER.removeprefix("https://")
    assert trust["StringEquals"][f"{host}:sub"] == "system:serviceaccount:vault:vault"
    account = server(prod)["serviceAccount"]
    assert account["name"] == "vault"
    assert account["annotations"] == {"eks.amazonaws.com/role-arn": role.outputs["arn"]}


def test_the_listener_serves_tls_from_the_certificate_the_pods_mount(prod) -> None:
    certificate = server_certificate(prod)
    spec = certificate.inputs["spec"]
    assert problems(spec, CERTIFICATE_SPEC) == []
    assert spec["issuerRef"] == {
        "name": "internal-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert "*.vault-internal" in spec["dnsNames"] and "vault.vault.svc" in spec["dnsNames"]
    assert spec["ipAddresses"] == ["127.0.0.1"]  # the chart's VAULT_ADDR in the pod
    values = server(prod)
    (volume,) = values["volumes"]
    assert volume["secret"] == {"secretName": spec["secretName"]}
    (mount,) = [m for m in values["volumeMounts"] if m["name"] == volume["name"]]
    directory = mount["mountPath"]
    config = hcl(prod)
    assert setting(config, "tls_disable") == ["0"]
    assert setting(config, "tls_min_version") == ["tls12"]
    assert setting(config, "tls_cert_file") == [f"{directory}/tls.crt"]
    assert setting(config, "tls_key_file") == [f"{directory}/tls.key"]
    assert values["extraEnvironmentVars"] == {"VAULT_CACERT": f"{directory}/ca.crt"}
    assert release(prod).inputs["values"]["global"]["tlsDisable"] is False


def test_data_and_audit_live_on_encrypted_volumes(prod, dev) -> None:
    for run, data_gib in ((prod, 10), (dev, 5)):
        values = server(run)
        assert values["dataStorage"]["storageClass"] == "gp3-encrypted"
        assert values["dataStorage"]["size"] == f"{data_gib}Gi"
        audit = values["auditStorage"]
        assert audit["enabled"] is True and audit["storageClass"] == "gp3-encrypted"
        assert audit["mountPath"] == access.AUDIT_MOUNT
        assert access.AUDIT_FILE.startswith(audit["mountPath"] + "/")


def test_no_dev_mode_no_token_no_static_keys_and_the_ui_off(prod, dev) -> None:
    for run in (prod, dev):
        values = release(run).inputs["values"]
        assert values["server"]["dev"] == {"enabled": False}
        assert values["server"]["standalone"] == {"enabled": False}
        assert secret_value_paths(values) == []
        text = json.dumps(values, default=str)
        for forbidden in ("devRootToken", "AWS_ACCESS_KEY", "AWS_SECRET", "-dev"):
            assert forbidden not in text
        assert values["ui"] == {"enabled": False} and setting(hcl(run), "ui") == ["false"]
    with_ui = plan(lambda: _program(replace(ARGS, ui=True)))
    assert release(with_ui).inputs["values"]["ui"] == {"enabled": True}
    assert "ui = true" in hcl(with_ui)


def test_vault_waits_for_its_certificate_and_its_key_and_the_certificate_for_cert_manager(
    prod,
) -> None:
    certificate = server_certificate(prod)
    cert_manager = next(r for r in prod.by_type(RELEASE) if r.name == "cert-manager")
    assert cert_manager.urn in certificate.dependencies
    after = release(prod).dependencies
    for needed in (
        certificate,
        one(prod, "aws:kms/key:Key"),
        one(prod, "aws:iam/rolePolicy:RolePolicy"),
    ):
        assert needed.urn in after, needed.type
    namespace = next(r for r in prod.by_type("kubernetes:core/v1:Namespace") if r.name == "vault")
    assert namespace.urn in after


def test_the_namespace_is_outside_the_mesh_and_admits_only_the_client_namespaces(prod) -> None:
    namespace = next(r for r in prod.by_type("kubernetes:core/v1:Namespace") if r.name == "vault")
    labels = namespace.inputs["metadata"]["labels"]
    assert "istio-injection" not in labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    policies = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r
        for r in prod.by_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    assert {("vault", "default-deny"), ("vault", "allow-dns"), ("vault", "allow-injector")} <= set(
        policies
    )
    for found in policies.values():
        assert_valid(
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **found.inputs}
        )
    assert_valid({"apiVersion": "v1", "kind": "Namespace", **namespace.inputs})
    egress = policies[("ml-serving", "allow-vault")].inputs["spec"]["egress"]
    assert egress[0]["ports"] == [{"protocol": "TCP", "port": 8200}]
    network = server(prod)["networkPolicy"]
    assert network["enabled"] is True
    api, cluster = network["ingress"]
    (selector,) = api["from"][0]["namespaceSelector"]["matchExpressions"]
    assert selector["values"] == ["vault", "ml-serving", "mlflow"]
    assert api["ports"] == [{"port": 8200, "protocol": "TCP"}]
    assert "namespaceSelector" not in cluster["from"][0]
    webhook = release(prod).inputs["values"]["injector"]["webhook"]
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == ["ml-serving", "mlflow"]


def test_the_injector_runs_restricted_and_is_spread_in_prod(prod, dev) -> None:
    injector = release(prod).inputs["values"]["injector"]
    assert injector["enabled"] is True and injector["replicas"] == 2
    assert injector["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert release(dev).inputs["values"]["injector"]["replicas"] == 1
    for values in (injector, server(prod)["statefulSet"]):
        context = values["securityContext"]
        assert context["pod"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert context["container"]["capabilities"] == {"drop": ["ALL"]}
        assert context["container"]["allowPrivilegeEscalation"] is False
    assert server(prod)["resources"]["limits"]["memory"] == "512Mi"


def test_bad_arguments_name_every_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Vault(
            "v",
            replace(
                ARGS,
                replicas=2,
                data_storage_gib=0,
                audit_storage_gib=2000,
                key_deletion_window_days=3,
            ),
        )
    message = str(caught.value)
    for field in ("replicas", "data_storage_gib", "audit_storage_gib", "key_deletion_window_days"):
        assert f"{field}:" in message
    assert "1, 3 or 5" in message


def test_each_client_namespace_gets_the_internal_ca_for_the_agent(prod) -> None:
    """The agent's tls-secret: a Secret in the client's namespace whose ca.crt is the CA
    that signed Vault's listener (a leaf from the same issuer carries it)."""
    client = certificates(prod)["ml-serving"]
    spec = client.inputs["spec"]
    assert problems(spec, CERTIFICATE_SPEC) == []
    assert client.inputs["metadata"]["name"] == spec["secretName"] == "vault-ca"
    assert spec["issuerRef"] == server_certificate(prod).inputs["spec"]["issuerRef"]
    (cert_manager,) = [r for r in prod.by_type(RELEASE) if r.name == "cert-manager"]
    assert cert_manager.urn in client.dependencies
