"""Configure a running, initialized Vault as code: the same run twice changes nothing.

``python -m infra.vault_setup --stack STACK`` brings Vault to the state this repository
declares (``components/services/vault_access.py``), reading each piece first and writing
only what differs:

1. the ``file`` audit device, logging to the audit volume (first, so that everything
   after it is audited);
2. the Kubernetes auth method at ``auth/kubernetes``, configured to review tokens with
   the cluster's API server and CA (Vault reads both, and its own service account token,
   from its pod);
3. a KV v2 secrets engine at ``secret/``;
4. per workload, an ACL policy (``read`` on its paths) and a Kubernetes auth role binding
   its service account to that policy with a token TTL of minutes; the raft snapshot
   CronJob is one of them (``vault-snapshot``: ``read`` on ``sys/storage/raft/snapshot``
   only, its login token minted for the ``vault`` audience).

It runs with an operator's token from the environment (``VAULT_ADDR``, ``VAULT_TOKEN``,
``VAULT_CACERT``), never a root token, and stores nothing. ``--print-policy`` prints the
ACL policy that token needs. An audit device, auth method or mount that exists with other
settings is reported, never replaced: replacing one would drop its data or its log.

Exit status: 0 Vault matches (changed or not), 1 Vault refused a call or differs in a way
this tool does not overwrite, 2 usage, environment or stack configuration errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from components.services.vault_access import (
    AUDIT_DEVICE,
    AUDIT_FILE,
    AUTH_MOUNT,
    KUBERNETES_HOST,
    KV_MOUNT,
    ROLES,
)
from infra.vault_api import Method, Need, UsageError, VaultClient, VaultError, data_of, need

AUDIT_BODY = {
    "type": "file",
    "description": "Every request and response, HMAC'd, on the audit volume",
    "options": {"file_path": AUDIT_FILE},
}
AUTH_BODY = {"type": "kubernetes", "description": "Workloads' service accounts"}
AUTH_CONFIG = {"kubernetes_host": KUBERNETES_HOST, "disable_local_ca_jwt": False}
KV_BODY = {"type": "kv", "description": "Workloads' secrets", "options": {"version": "2"}}
_SUDO = {"sys/audit", f"sys/audit/{AUDIT_DEVICE}", f"sys/auth/{AUTH_MOUNT}"}


def _need(method: Method, path: str) -> Need:
    return need(method, path, sudo=path in _SUDO)


def planned_calls() -> list[tuple[Method, str]]:
    """Every call a run may make, in order (reads, and the writes they may lead to)."""
    calls: list[tuple[Method, str]] = [
        ("GET", "sys/audit"),
        ("POST", f"sys/audit/{AUDIT_DEVICE}"),
        ("GET", "sys/auth"),
        ("POST", f"sys/auth/{AUTH_MOUNT}"),
        ("GET", f"auth/{AUTH_MOUNT}/config"),
        ("POST", f"auth/{AUTH_MOUNT}/config"),
        ("GET", "sys/mounts"),
        ("POST", f"sys/mounts/{KV_MOUNT}"),
    ]
    for workload in ROLES:
        for path in (
            f"sys/policies/acl/{workload.name}",
            f"auth/{AUTH_MOUNT}/role/{workload.name}",
        ):
            calls.append(("GET", path))
            calls.append(("POST", path))
    return calls


def operator_policy() -> str:
    """The ACL policy (HCL) an operator's token needs for a run: exactly the paths and
    capabilities of :func:`planned_calls`."""
    granted: dict[str, list[str]] = {}
    for method, path in planned_calls():
        for capability in _need(method, path).capabilities:
            if capability not in granted.setdefault(path, []):
                granted[path].append(capability)
    blocks = [
        f'path "{path}" {{\n  capabilities = {json.dumps(caps)}\n}}\n'
        for path, caps in granted.items()
    ]
    return "\n".join(blocks)


def _matches(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Every desired field has its value in ``current`` (Vault adds its defaults)."""
    return all(current.get(key) == value for key, value in desired.items())


class Setup:
    """One run against ``client``; ``changes`` lists what it wrote."""

    def __init__(self, client: VaultClient, say: Callable[[str], None]) -> None:
        self.client = client
        self.say = say
        self.changes: list[str] = []

    def _get(self, path: str) -> dict[str, Any] | None:
        return self.client.call("GET", path, None, _need("GET", path))

    def _write(self, path: str, body: dict[str, Any], what: str) -> None:
        self.client.call("POST", path, body, _need("POST", path))
        self.changes.append(what)
        self.say(f"changed: {what}")

    def _enabled(
        self, listing: str, mount: str, body: dict[str, Any], what: str, fields: tuple[str, ...]
    ) -> None:
        """Enable ``mount`` under ``listing`` unless it is there with ``body``'s fields."""
        current = data_of(self._get(listing)).get(f"{mount}/")
        if current is None:
            self._write(f"{listing}/{mount}", body, what)
            return
        differs = [f for f in fields if current.get(f) != body[f]]
        if differs:
            raise VaultError(
                f"{listing}/{mount} exists with other {', '.join(differs)} than {what} "
                f"needs ({', '.join(f'{f}={body[f]!r}' for f in differs)}); this tool does not "
                "replace it (that would drop its data or log): change it by hand, see "
                "docs/runbooks/vault-init.md"
            )

    def run(self) -> list[str]:
        """Apply every step in order; return the changes made."""
        self._enabled(
            "sys/audit", AUDIT_DEVICE, AUDIT_BODY, "audit device file", ("type", "options")
        )
        self._enabled("sys/auth", AUTH_MOUNT, AUTH_BODY, "auth method kubernetes", ("type",))
        config_path = f"auth/{AUTH_MOUNT}/config"
        if not _matches(data_of(self._get(config_path)), AUTH_CONFIG):
            self._write(config_path, AUTH_CONFIG, "kubernetes auth config")
        self._enabled("sys/mounts", KV_MOUNT, KV_BODY, "KV v2 mount secret", ("type", "options"))
        for workload in ROLES:
            path = f"sys/policies/acl/{workload.name}"
            policy = workload.policy()
            if data_of(self._get(path)).get("policy") != policy:
                self._write(path, {"policy": policy}, f"policy {workload.name}")
            path = f"auth/{AUTH_MOUNT}/role/{workload.name}"
            role = workload.role()
            if not _matches(data_of(self._get(path)), role):
                self._write(path, role, f"role {workload.name}")
        return self.changes


def check_stack(stack: str, config_file: Path | None = None) -> None:
    """Refuse a stack whose configuration (``Pulumi.<stack>.yaml``, or ``config_file``) is
    invalid or does not install Vault."""
    from infra.config import ConfigError, stack_settings
    from infra.offline.stack_file import PlanInputError

    try:
        settings = stack_settings(stack, config_file)
    except (PlanInputError, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    if not settings.vault_enabled:
        raise UsageError(f"stack {stack}: mlplatform:vault.enabled is false; no Vault to configure")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.vault_setup", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--stack", required=True, help="the stack whose Vault this configures")
    parser.add_argument(
        "--config-file", type=Path, help="the stack file (default Pulumi.<stack>.yaml)"
    )
    parser.add_argument(
        "--print-policy", action="store_true", help="print the ACL policy the token needs"
    )
    return parser


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the setup; return the exit status (0 done, 1 refused by Vault, 2 usage)."""
    args = _parser().parse_args(argv)  # exits 2 on usage errors
    env = os.environ if environ is None else environ
    try:
        check_stack(args.stack, args.config_file)
        if args.print_policy:
            print(operator_policy(), end="")
            return 0
        missing = [name for name in ("VAULT_ADDR", "VAULT_TOKEN") if not env.get(name)]
        if missing:
            raise UsageError(
                f"{' and '.join(missing)} not set: export the Vault address and an operator "
                "token (not the root token) holding the policy --print-policy shows"
            )
        client = VaultClient(env["VAULT_ADDR"], env["VAULT_TOKEN"], ca_file=env.get("VAULT_CACERT"))
        changes = Setup(client, print).run()
    except UsageError as exc:
        print(f"vault_setup: {exc}", file=sys.stderr)
        return 2
    except VaultError as exc:
        print(f"vault_setup: {exc}", file=sys.stderr)
        return 1
    print(f"{len(changes)} change(s)" if changes else "nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
