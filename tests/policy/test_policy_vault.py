"""Vault rules: dev mode, the TLS listener and the seal are mandatory; no Helm values key
named like a credential holds a literal; the seal key rotates like every KMS key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components import _k8s
from policy import rules_vault
from policy.rules import check_resource

RELEASE = "kubernetes:helm.sh/v3:Release"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
CONFIG = (
    'listener "tcp" {\n  tls_disable = 0\n  tls_cert_file = "/vault/tls/tls.crt"\n}\n'
    'storage "raft" {\n  path = "/vault/data"\n}\n'
    'seal "awskms" {\n  region = "us-west-2"\n  kms_key_id = "1234abcd"\n}\n'
)
COMPLIANT: dict[str, Any] = {
    "chart": "vault",
    "version": "0.34.1",
    "values": {
        "global": {"tlsDisable": False},
        "server": {
            "dev": {"enabled": False},
            "ha": {"enabled": True, "replicas": 3, "raft": {"enabled": True, "config": CONFIG}},
        },
    },
}


def fired(props: dict[str, Any]) -> dict[str, str]:
    return {f.policy: f.level for f in check_resource(RELEASE, props)}


def vault(**server: Any) -> dict[str, Any]:
    props = copy.deepcopy(COMPLIANT)
    props["values"]["server"].update(server)
    return props


def test_the_platform_shape_of_vault_passes() -> None:
    assert fired(COMPLIANT) == {}


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (vault(dev={"enabled": True}), {"vault-no-dev-mode"}),
        (vault(dev={"enabled": "true"}), {"vault-no-dev-mode"}),
        # A literal root token is dev mode's and a credential in values, both.
        (vault(dev={"devRootToken": "root"}), {"vault-no-dev-mode", "helm-no-literal-secret"}),
        (vault(dev={"enabled": UNKNOWN}), set()),
    ],
)
def test_dev_mode_is_a_mandatory_violation(props: dict[str, Any], expected: set[str]) -> None:
    found = fired(props)
    assert set(found) == expected and set(found.values()) <= {"mandatory"}


def test_a_listener_without_tls_is_a_mandatory_violation() -> None:
    off = vault(
        ha={"enabled": True, "raft": {"enabled": True, "config": CONFIG.replace("= 0", "= 1")}}
    )
    assert fired(off) == {"vault-tls-listener": "mandatory"}
    json_config = {"listener": {"tcp": {"tls_disable": True}}, "seal": {"awskms": {}}}
    as_json = vault(ha={"enabled": True, "raft": {"enabled": True, "config": json_config}})
    assert fired(as_json) == {"vault-tls-listener": "mandatory"}
    chart_default = copy.deepcopy(COMPLIANT)
    del chart_default["values"]["global"]
    (finding,) = check_resource(RELEASE, chart_default)
    assert finding.policy == "vault-tls-listener" and "global.tlsDisable" in finding.message
    unknown = vault(ha={"enabled": True, "raft": {"enabled": True, "config": UNKNOWN}})
    assert fired(unknown) == {}


def test_no_seal_stanza_is_a_mandatory_violation() -> None:
    shamir = CONFIG.split('seal "awskms"')[0]
    (finding,) = check_resource(
        RELEASE, vault(ha={"enabled": True, "raft": {"enabled": True, "config": shamir}})
    )
    assert (finding.policy, finding.level) == ("vault-seal-configured", "mandatory")
    assert "server.ha.raft.config has no seal stanza" in finding.message
    # Standalone mode with the chart's default config: plain HTTP and no seal.
    standalone = {
        "chart": "vault",
        "version": "0.34.1",
        "values": {"global": {"tlsDisable": False}},
    }
    assert fired(standalone) == {
        "vault-tls-listener": "mandatory",
        "vault-seal-configured": "mandatory",
    }


def test_other_charts_are_not_judged_as_vault() -> None:
    props = {
        "chart": "cert-manager",
        "version": "v1.21.1",
        "values": {"server": {"dev": {"enabled": True}}},
    }
    assert fired(props) == {}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"auth": {"password": "hunter2"}}, ["values.auth.password"]),
        ({"env": [{"name": "X", "apiToken": "abc"}]}, ["values.env[0].apiToken"]),
        ({"clientSecret": 12345}, ["values.clientSecret"]),
        ({"auth": {"existingSecret": "db-creds", "passwordKey": "password"}}, []),
        ({"auth": {"password": UNKNOWN}}, []),
        ({"auth": {"password": ""}, "token": {"enabled": True}, "createToken": False}, []),
    ],
)
def test_a_literal_credential_in_any_release_is_a_mandatory_violation(
    values: dict[str, Any], expected: list[str]
) -> None:
    props = {"chart": "postgresql", "version": "16.0.0", "values": values}
    findings = check_resource(RELEASE, props)
    assert [f.policy for f in findings] == ["helm-no-literal-secret"] * len(expected)
    assert [f.message.split(" ", 1)[0] for f in findings] == expected
    assert all(f.level == "mandatory" for f in findings)


def test_the_packs_credential_pattern_is_the_components_copy() -> None:
    assert rules_vault.SECRET_KEY.pattern == _k8s._SECRET_KEY.pattern
    assert rules_vault.SECRET_KEY.flags == _k8s._SECRET_KEY.flags


def test_a_seal_key_that_does_not_rotate_is_a_mandatory_violation() -> None:
    key = {"enableKeyRotation": False, "deletionWindowInDays": 30}
    assert {f.policy: f.level for f in check_resource("aws:kms/key:Key", key)} == {
        "kms-key-rotation": "mandatory"
    }
    assert check_resource("aws:kms/key:Key", {**key, "enableKeyRotation": True}) == []
