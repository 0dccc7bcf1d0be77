"""Vault in the composed stacks: its config keys, its place in the services stage, and what
the prod plan shows (a pinned release, three raft nodes, the seal on the new key, TLS on,
audit storage, no dev mode or root token in any input)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import KEYS, ConfigError, parse_settings
from infra.offline import CapturedResource, ProgramRun
from infra.offline.report import run_plan
from infra.offline.stack_file import load_stack_config

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "kubernetes:helm.sh/v3:Release"
VAULT_KEYS = sorted(k for k in KEYS if k.startswith("vault."))


def raw_for(stack: str, **vault: Any) -> dict[str, Any]:
    config = load_stack_config(stack, root=ROOT)
    prefix = "mlplatform:"
    raw = {k[len(prefix) :]: v for k, v in config.values.items() if k.startswith(prefix)}
    if vault:
        raw["vault"] = json.dumps({**json.loads(raw["vault"]), **vault})
    return raw


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return run_plan("prod", root=ROOT).run


def vault_release(run: ProgramRun) -> CapturedResource:
    (found,) = [r for r in run.by_type(RELEASE) if r.inputs.get("name") == "vault"]
    return found


def test_the_stacks_set_their_vault() -> None:
    dev, prod = parse_settings(raw_for("dev")), parse_settings(raw_for("prod"))
    assert (dev.vault_replicas, prod.vault_replicas) == (1, 3)
    assert dev.vault_enabled and prod.vault_enabled
    assert not dev.vault_ui and not prod.vault_ui
    assert prod.vault_audit_storage_gib > dev.vault_audit_storage_gib


@pytest.mark.parametrize(
    ("vault", "expected"),
    [
        ({"replicas": 2}, "mlplatform:vault.replicas: 2 must be 1, 3 or 5"),
        ({"dataStorageGib": 0}, "mlplatform:vault.dataStorageGib: 0 must be whole GiB"),
        ({"auditStorageGib": 5000}, "mlplatform:vault.auditStorageGib: 5000 must be whole GiB"),
        ({"replica": 3}, "mlplatform:vault.replica: unknown key (did you mean 'replicas'?)"),
        ({"ui": "maybe"}, "mlplatform:vault.ui:"),
    ],
)
def test_bad_vault_values_name_their_key(vault: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw_for("prod", **vault))
    assert expected in str(info.value)


def test_every_vault_key_is_declared_and_documented() -> None:
    assert VAULT_KEYS == [
        "vault.auditStorageGib",
        "vault.dataStorageGib",
        "vault.enabled",
        "vault.replicas",
        "vault.ui",
    ]
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    rows = (ROOT / "docs" / "configuration.md").read_text()
    for key in VAULT_KEYS:
        assert schema[key]["type"] == KEYS[key], key
        assert f"| `{key}` | {KEYS[key]} |" in rows, key


def test_the_prod_plan_shows_a_pinned_ha_vault_sealed_by_its_new_key(prod) -> None:
    release = vault_release(prod)
    assert (release.inputs["chart"], release.inputs["version"]) == ("vault", "0.34.1")
    server = release.inputs["values"]["server"]
    assert server["ha"]["replicas"] == 3 and server["ha"]["raft"]["enabled"] is True
    config = server["ha"]["raft"]["config"]
    (key,) = [k for k in prod.by_type("aws:kms/key:Key") if k.name.endswith("-vault-seal")]
    assert re.search(r'seal "awskms" \{[^}]*kms_key_id = "' + key.outputs["keyId"] + '"', config)
    assert "tls_disable = 0" in config and server["auditStorage"]["enabled"] is True
    assert server["auditStorage"]["size"] == "50Gi"


def test_no_input_anywhere_holds_dev_mode_or_a_root_token(prod) -> None:
    for resource in prod.resources:
        text = json.dumps(resource.inputs, default=str)
        assert '"dev": {"enabled": true' not in text.replace("True", "true"), resource.urn
        for forbidden in ("devRootToken", "-dev-root-token", "root_token"):
            assert forbidden not in text, resource.urn


def test_vault_follows_cert_manager_and_the_storage_add_on(prod) -> None:
    release = vault_release(prod)
    (certificate,) = [
        r
        for r in prod.by_type("kubernetes:cert-manager.io/v1:Certificate")
        if r.inputs["metadata"]["name"] == "vault-tls"
    ]
    (cert_manager,) = [r for r in prod.by_type(RELEASE) if r.inputs.get("name") == "cert-manager"]
    assert cert_manager.urn in certificate.dependencies
    assert certificate.urn in release.dependencies
    storage = next(r for r in prod.by_type("aws:eks/addon:Addon") if "ebs" in r.name)
    assert storage.urn in release.dependencies
    assert release.inputs["values"]["server"]["dataStorage"]["storageClass"] == "gp3-encrypted"


def test_vault_can_be_left_out(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["mlplatform:vault"] = {"enabled": False}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    plan = run_plan("dev", path, root=ROOT)
    assert not plan.run.by_type("mlplatform:index:Vault")
    assert plan.run.outputs["vaultAddress"] == ""


def test_the_security_doc_shows_each_workloads_access_as_declared() -> None:
    from components.services.vault_access import WORKLOADS

    text = (ROOT / "docs" / "security.md").read_text()
    assert "## Vault" in text and "runbooks/vault-init.md" in text
    assert (ROOT / "docs" / "runbooks" / "vault-init.md").is_file()
    for workload in WORKLOADS:
        (row,) = [line for line in text.splitlines() if f"`{workload.name}` |" in line]
        assert f"`{workload.namespace}/{workload.service_account}`" in row
        for path in workload.read_paths:
            assert f"`secret/data/{path}`" in row
        assert f"{workload.token_ttl_s // 60} min / {workload.token_max_ttl_s // 3600} h" in row
