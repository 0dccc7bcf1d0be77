"""Vault's configuration as code against a stand-in that implements Vault's documented
HTTP API (``fake_vault``): the exact calls of a first run, no writes on a second, drift
put back, and one clear line when the token lacks a capability."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.services.vault_access import AUDIT_FILE, ROLES
from infra import vault_setup
from tests.infra.fake_vault import VaultState, fake_vault, parse_policy

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hvs.operator-token-for-tests"
SERVING_POLICY = 'path "secret/data/ml-serving/*" {\n  capabilities = ["read"]\n}\n'
MLFLOW_POLICY = 'path "secret/data/mlflow/database" {\n  capabilities = ["read"]\n}\n'
SNAPSHOT_POLICY = 'path "sys/storage/raft/snapshot" {\n  capabilities = ["read"]\n}\n'
SNAPSHOT_ROLE = {
    "bound_service_account_names": ["vault-snapshot"],
    "bound_service_account_namespaces": ["vault"],
    "token_policies": ["vault-snapshot"],
    "token_ttl": 300,
    "token_max_ttl": 900,
    "audience": "vault",
}


def operator() -> dict[str, Any]:
    return {TOKEN: parse_policy(vault_setup.operator_policy())}


def run(address: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    env = {"VAULT_ADDR": address, "VAULT_TOKEN": TOKEN}
    status = vault_setup.main(["--stack", "prod", *args], env)
    out, err = capsys.readouterr()
    return status, out, err


def role(namespace: str, account: str, policy: str) -> dict[str, Any]:
    return {
        "bound_service_account_names": [account],
        "bound_service_account_namespaces": [namespace],
        "token_policies": [policy],
        "token_ttl": 600,
        "token_max_ttl": 3600,
    }


FIRST_RUN = [
    ("GET", "/v1/sys/audit", None),
    (
        "POST",
        "/v1/sys/audit/file",
        {
            "type": "file",
            "description": "Every request and response, HMAC'd, on the audit volume",
            "options": {"file_path": "/vault/audit/vault-audit.log"},
        },
    ),
    ("GET", "/v1/sys/auth", None),
    (
        "POST",
        "/v1/sys/auth/kubernetes",
        {"type": "kubernetes", "description": "Workloads' service accounts"},
    ),
    ("GET", "/v1/auth/kubernetes/config", None),
    (
        "POST",
        "/v1/auth/kubernetes/config",
        {"kubernetes_host": "https://kubernetes.default.svc:443", "disable_local_ca_jwt": False},
    ),
    ("GET", "/v1/sys/mounts", None),
    (
        "POST",
        "/v1/sys/mounts/secret",
        {"type": "kv", "description": "Workloads' secrets", "options": {"version": "2"}},
    ),
    ("GET", "/v1/sys/policies/acl/ml-serving", None),
    ("POST", "/v1/sys/policies/acl/ml-serving", {"policy": SERVING_POLICY}),
    ("GET", "/v1/auth/kubernetes/role/ml-serving", None),
    ("POST", "/v1/auth/kubernetes/role/ml-serving", role("ml-serving", "inference", "ml-serving")),
    ("GET", "/v1/sys/policies/acl/mlflow", None),
    ("POST", "/v1/sys/policies/acl/mlflow", {"policy": MLFLOW_POLICY}),
    ("GET", "/v1/auth/kubernetes/role/mlflow", None),
    ("POST", "/v1/auth/kubernetes/role/mlflow", role("mlflow", "mlflow", "mlflow")),
    ("GET", "/v1/sys/policies/acl/vault-snapshot", None),
    ("POST", "/v1/sys/policies/acl/vault-snapshot", {"policy": SNAPSHOT_POLICY}),
    ("GET", "/v1/auth/kubernetes/role/vault-snapshot", None),
    ("POST", "/v1/auth/kubernetes/role/vault-snapshot", SNAPSHOT_ROLE),
]


def test_a_first_run_makes_exactly_the_documented_calls(capsys) -> None:
    state = VaultState(tokens=operator())
    with fake_vault(state) as address:
        status, out, err = run(address, capsys)
    assert (status, err) == (0, "")
    assert state.calls == FIRST_RUN
    assert out.splitlines()[-1] == "10 change(s)"
    assert state.audit["file/"]["options"] == {"file_path": AUDIT_FILE}
    assert state.mounts["secret/"]["options"] == {"version": "2"}
    assert state.roles["ml-serving"]["token_ttl"] == 600  # minutes, not days


def test_a_second_run_writes_nothing(capsys) -> None:
    state = VaultState(tokens=operator())
    with fake_vault(state) as address:
        assert run(address, capsys)[0] == 0
        state.calls.clear()
        status, out, _ = run(address, capsys)
    assert status == 0 and out == "nothing to change\n"
    assert [method for method, _, _ in state.calls] == ["GET"] * 10
    assert [path for _, path, _ in state.calls] == [p for m, p, _ in FIRST_RUN if m == "GET"]


def test_a_role_and_a_policy_changed_by_hand_are_put_back_and_nothing_else(capsys) -> None:
    state = VaultState(tokens=operator())
    with fake_vault(state) as address:
        run(address, capsys)
        state.roles["mlflow"]["token_ttl"] = 86400 * 30
        state.policies["ml-serving"] = 'path "secret/*" {\n  capabilities = ["read"]\n}\n'
        state.calls.clear()
        status, out, _ = run(address, capsys)
    writes = [(m, p) for m, p, _ in state.calls if m == "POST"]
    assert status == 0 and writes == [
        ("POST", "/v1/sys/policies/acl/ml-serving"),
        ("POST", "/v1/auth/kubernetes/role/mlflow"),
    ]
    assert state.roles["mlflow"]["token_ttl"] == 600
    assert state.policies["ml-serving"] == SERVING_POLICY
    assert "changed: role mlflow" in out


def test_a_token_without_sudo_gets_one_line_naming_the_capability(capsys) -> None:
    grants = operator()[TOKEN]
    grants["sys/audit/file"] = {"create", "update"}
    state = VaultState(tokens={TOKEN: grants})
    with fake_vault(state) as address:
        status, out, err = run(address, capsys)
    assert status == 1 and out == ""
    assert err == (
        "vault_setup: permission denied on POST /v1/sys/audit/file: the token lacks [sudo] "
        'on path "sys/audit/file" (it needs create, update, sudo; print the whole operator '
        "policy with --print-policy)\n"
    )
    # Nothing after the refusal but the token asking what it holds there.
    assert state.calls[-2:] == [
        ("POST", "/v1/sys/audit/file", FIRST_RUN[1][2]),
        ("POST", "/v1/sys/capabilities-self", {"paths": ["sys/audit/file"]}),
    ]
    assert not state.audit


def test_the_printed_policy_is_all_the_token_needs_and_no_root_token_is_involved(capsys) -> None:
    status = vault_setup.main(["--stack", "prod", "--print-policy"], {})
    policy = capsys.readouterr().out
    assert status == 0 and policy == vault_setup.operator_policy()
    grants = parse_policy(policy)
    assert "*" not in "".join(grants) and "sys/*" not in grants
    for path in list(grants):
        if path.startswith("sys/policies/acl/"):
            assert path.rsplit("/", 1)[1] in {w.name for w in ROLES}
    # Each grant is needed: without any one path, a first run is refused.
    for path in grants:
        fewer = {p: c for p, c in grants.items() if p != path}
        state = VaultState(tokens={TOKEN: fewer})
        with fake_vault(state) as address:
            assert run(address, capsys)[0] == 1, path


def test_an_audit_device_with_another_file_is_reported_not_replaced(capsys) -> None:
    state = VaultState(tokens=operator())
    state.audit["file/"] = {"type": "file", "description": "", "options": {"file_path": "stdout"}}
    with fake_vault(state) as address:
        status, _, err = run(address, capsys)
    assert status == 1 and len(err.splitlines()) == 1
    assert "sys/audit/file exists with other options" in err and "/vault/audit" in err
    assert state.calls == [("GET", "/v1/sys/audit", None)]


def test_the_token_never_appears_in_any_output(capsys) -> None:
    state = VaultState(tokens={TOKEN: {}})
    with fake_vault(state) as address:
        _, out, err = run(address, capsys)
        state.tokens = operator()
        _, out2, err2 = run(address, capsys)
    assert TOKEN not in out + err + out2 + err2


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "VAULT_ADDR and VAULT_TOKEN not set"),
        ({"VAULT_ADDR": "https://127.0.0.1:8200"}, "VAULT_TOKEN not set"),
        (
            {"VAULT_ADDR": "http://vault.vault.svc:8200", "VAULT_TOKEN": TOKEN},
            "plain http would send the token unencrypted",
        ),
        (
            {"VAULT_ADDR": "https://127.0.0.1:8200", "VAULT_TOKEN": TOKEN, "VAULT_CACERT": "/no"},
            "VAULT_CACERT '/no': cannot read a CA bundle",
        ),
    ],
)
def test_a_bad_environment_is_a_usage_error(
    env: dict[str, str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert vault_setup.main(["--stack", "dev"], env) == 2
    _, err = capsys.readouterr()
    assert expected in err and len(err.splitlines()) == 1 and TOKEN not in err


def test_a_stack_without_vault_is_refused(tmp_path: Path, capsys) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["mlplatform:vault"] = {"enabled": False}
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(yaml.safe_dump(document))
    status = vault_setup.main(["--stack", "dev", "--config-file", str(stack_file)], {})
    assert status == 2
    assert "mlplatform:vault.enabled is false" in capsys.readouterr().err


def test_a_token_without_a_path_is_told_every_capability_it_lacks_there(capsys) -> None:
    grants = {p: c for p, c in operator()[TOKEN].items() if p != "sys/mounts/secret"}
    state = VaultState(tokens={TOKEN: grants})
    with fake_vault(state) as address:
        status, _, err = run(address, capsys)
    assert status == 1
    assert 'the token lacks [create, update] on path "sys/mounts/secret"' in err
    assert "secret/" not in state.mounts and "kubernetes/" in state.auth


def test_the_snapshot_role_reads_the_snapshot_endpoint_and_nothing_else(capsys) -> None:
    state = VaultState(tokens=operator())
    with fake_vault(state) as address:
        assert run(address, capsys)[0] == 0
    grants = parse_policy(state.policies["vault-snapshot"])
    assert grants == {"sys/storage/raft/snapshot": {"read"}}
    role = state.roles["vault-snapshot"]
    assert role["bound_service_account_names"] == ["vault-snapshot"]
    assert role["bound_service_account_namespaces"] == ["vault"]
    assert role["token_policies"] == ["vault-snapshot"] and role["audience"] == "vault"
    assert role["token_max_ttl"] <= 900
    # The CronJob's service account is the one the role binds, in the same namespace.
    from components.services import vault_snapshots

    assert role["bound_service_account_names"][0] == vault_snapshots.SERVICE_ACCOUNT
    assert role["audience"] == vault_snapshots.TOKEN_AUDIENCE
