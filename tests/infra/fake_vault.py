"""A stand-in for Vault's HTTP API, for the tests of ``infra.vault_setup`` (the Vault
binary cannot be installed on these machines).

It serves exactly the endpoints the setup calls, with the methods, parameters, required
fields, status codes and response shapes of Vault's API documentation
(hashicorp/vault ``website/content/api-docs/``): ``system/audit.mdx`` (the listing is
the map itself), ``system/auth.mdx`` and ``system/mounts.mdx`` (listings under
``data``), ``auth/kubernetes.mdx`` (config and roles, reads under ``data`` with the
method's defaults filled in), ``system/policies.mdx`` (``{"name", "policy"}``). A path
in use, a missing required field or an unconfigured method answers as Vault does (400
with ``errors``, 404 for a read of nothing), and writes answer 204.

Access follows Vault's ACL rule, decided here and not by the client: GET needs ``read``,
POST ``create`` on a new path and ``update`` on an existing one, and the documented
root-protected endpoints (``sys/audit``, ``sys/audit/:path``, enabling ``sys/auth/:path``)
also ``sudo``; a token without them gets 403 ``permission denied``. Any token may ask
``sys/capabilities-self`` (``system/capabilities-self.mdx``) what it holds on paths
(``["deny"]`` for none). Every call is recorded as ``(method, path, body)``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Grants = Mapping[str, set[str]]
"""An ACL: path (a trailing ``*`` is a prefix glob) -> capabilities."""

_ROLE_DEFAULTS: dict[str, Any] = {
    "alias_name_source": "serviceaccount_uid",
    "audience": "",
    "token_bound_cidrs": [],
    "token_explicit_max_ttl": 0,
    "token_max_ttl": 0,
    "token_no_default_policy": False,
    "token_num_uses": 0,
    "token_period": 0,
    "token_policies": [],
    "token_ttl": 0,
    "token_type": "default",
}


def parse_policy(hcl: str) -> dict[str, set[str]]:
    """The grants of an ACL policy written as ``path "P" { capabilities = [...] }``."""
    found = re.findall(r'path "([^"]+)" \{\s*capabilities = (\[[^\]]*\])\s*\}', hcl)
    return {path: set(json.loads(caps)) for path, caps in found}


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value or []]


def _seconds(value: Any) -> int:
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"(\d+)([smh]?)", str(value))
    if not match:
        raise ValueError(f"cannot parse duration {value!r}")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


@dataclass
class VaultState:
    """What the fake Vault holds: a freshly initialized Vault has the token auth method,
    the cubbyhole, identity and sys mounts, and the default and root policies."""

    tokens: dict[str, Grants]
    audit: dict[str, dict[str, Any]] = field(default_factory=dict)
    auth: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "token/": {"type": "token", "description": "token based credentials", "options": None}
        }
    )
    kubernetes_config: dict[str, Any] | None = None
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    mounts: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            f"{name}/": {"type": name, "description": "", "options": None}
            for name in ("cubbyhole", "identity", "sys")
        }
    )
    policies: dict[str, str] = field(default_factory=lambda: {"default": "", "root": ""})
    calls: list[tuple[str, str, Any]] = field(default_factory=list)


class VaultError400(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    state: VaultState
    lock: threading.Lock

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _reply(self, status: int, document: Any = None) -> None:
        body = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self.lock:
            self.state.calls.append((method, self.path, body))
            if not self.path.startswith("/v1/"):
                self._reply(404, {"errors": []})
                return
            path = self.path[len("/v1/") :]
            if path == "sys/capabilities-self" and method == "POST":
                # Every token may ask about itself (Vault's default policy grants it).
                paths = _list((body or {}).get("paths"))
                if not paths:
                    self._reply(400, {"errors": ["missing paths"]})
                    return
                held = {p: sorted(self._granted(p)) or ["deny"] for p in paths}
                single = {"capabilities": held[paths[0]]} if len(paths) == 1 else {}
                self._reply(200, {**single, **held})
                return
            try:
                route = self._route(method, path)
            except VaultError400 as exc:
                self._reply(400, {"errors": [str(exc)]})
                return
            if route is None:
                self._reply(404, {"errors": ["1 error occurred:\n\t* unsupported path\n\n"]})
                return
            exists, sudo, act = route
            needed = {"read"} if method == "GET" else {"update" if exists else "create"}
            if sudo:
                needed.add("sudo")
            if not needed <= self._granted(path):
                self._reply(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
                return
            try:
                status, document = act(body or {})
            except VaultError400 as exc:
                self._reply(400, {"errors": [str(exc)]})
                return
            self._reply(status, document)

    def _granted(self, path: str) -> set[str]:
        grants = self.state.tokens.get(self.headers.get("X-Vault-Token") or "", {})
        found: set[str] = set()
        for pattern, caps in grants.items():
            if fnmatch.fnmatchcase(path, pattern) if "*" in pattern else path == pattern:
                found |= caps
        return found

    # A route: (does the target exist, is it root-protected, what to do with the body).
    def _route(self, method: str, path: str):
        s = self.state
        parts = path.split("/")
        if path == "sys/audit" and method == "GET":
            return True, True, lambda _: (200, dict(s.audit))
        if parts[:2] == ["sys", "audit"] and len(parts) == 3 and method == "POST":
            return parts[2] + "/" in s.audit, True, lambda b: self._enable_audit(parts[2], b)
        if path == "sys/auth" and method == "GET":
            return True, False, lambda _: (200, {"lease_id": "", "data": dict(s.auth)})
        if parts[:2] == ["sys", "auth"] and len(parts) == 3 and method == "POST":
            return parts[2] + "/" in s.auth, True, lambda b: self._enable(s.auth, parts[2], b)
        if path == "sys/mounts" and method == "GET":
            return True, False, lambda _: (200, {"lease_id": "", "data": dict(s.mounts)})
        if parts[:2] == ["sys", "mounts"] and len(parts) == 3 and method == "POST":
            return parts[2] + "/" in s.mounts, False, lambda b: self._enable(s.mounts, parts[2], b)
        if parts[:3] == ["sys", "policies", "acl"] and len(parts) == 4:
            name = parts[3].lower()
            if method == "GET":
                return True, False, lambda _: self._read_policy(name)
            return name in s.policies, False, lambda b: self._write_policy(name, b)
        if parts[:2] == ["auth", "kubernetes"] and "kubernetes/" in s.auth:
            if parts[2:] == ["config"]:
                if method == "GET":
                    return True, False, lambda _: self._read_config()
                return s.kubernetes_config is not None, False, self._write_config
            if parts[2] == "role" and len(parts) == 4:
                name = parts[3]
                if method == "GET":
                    return True, False, lambda _: self._read_role(name)
                return name in s.roles, False, lambda b: self._write_role(name, b)
        return None

    def _enable_audit(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("type") not in ("file", "socket", "syslog"):
            raise VaultError400("audit type must be one of file, socket, syslog")
        if body["type"] == "file" and not (body.get("options") or {}).get("file_path"):
            raise VaultError400("file_path is required")
        return self._enable(self.state.audit, path, body)

    def _enable(
        self, table: dict[str, dict[str, Any]], path: str, body: dict[str, Any]
    ) -> tuple[int, Any]:
        if not body.get("type"):
            raise VaultError400("missing type")
        if f"{path}/" in table:
            raise VaultError400(f"path is already in use at {path}/")
        table[f"{path}/"] = {
            "type": body["type"],
            "description": body.get("description", ""),
            "options": body.get("options"),
            "local": bool(body.get("local", False)),
        }
        return 204, None

    def _read_policy(self, name: str) -> tuple[int, Any]:
        if name not in self.state.policies:
            return 404, {"errors": []}
        return 200, {"name": name, "policy": self.state.policies[name]}

    def _write_policy(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("policy"):
            raise VaultError400("'policy' parameter not supplied or empty")
        self.state.policies[name] = body["policy"]
        return 204, None

    def _read_config(self) -> tuple[int, Any]:
        config = self.state.kubernetes_config
        return (404, {"errors": []}) if config is None else (200, {"data": dict(config)})

    def _write_config(self, body: dict[str, Any]) -> tuple[int, Any]:
        if not body.get("kubernetes_host"):
            raise VaultError400("no host provided")
        self.state.kubernetes_config = {
            "kubernetes_host": body["kubernetes_host"],
            "kubernetes_ca_cert": body.get("kubernetes_ca_cert", ""),
            "pem_keys": _list(body.get("pem_keys")),
            "disable_local_ca_jwt": bool(body.get("disable_local_ca_jwt", False)),
            "issuer": body.get("issuer", ""),
            "disable_iss_validation": bool(body.get("disable_iss_validation", True)),
        }
        return 204, None

    def _read_role(self, name: str) -> tuple[int, Any]:
        role = self.state.roles.get(name)
        return (404, {"errors": []}) if role is None else (200, {"data": dict(role)})

    def _write_role(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        role = dict(self.state.roles.get(name) or _ROLE_DEFAULTS)
        for key in ("bound_service_account_names", "bound_service_account_namespaces"):
            value = _list(body.get(key, role.get(key)))
            if not value:
                raise VaultError400(f'"{key}" can not be empty')
            role[key] = value
        for key in ("token_ttl", "token_max_ttl", "token_period", "token_explicit_max_ttl"):
            if key in body:
                role[key] = _seconds(body[key])
        if "token_policies" in body:
            role["token_policies"] = _list(body["token_policies"])
        for key in ("alias_name_source", "audience", "token_type"):
            if key in body:
                role[key] = body[key]
        # Reads also show the deprecated names of the token fields.
        role.update(
            policies=role["token_policies"], ttl=role["token_ttl"], max_ttl=role["token_max_ttl"]
        )
        self.state.roles[name] = role
        return 204, None


@contextmanager
def fake_vault(state: VaultState) -> Iterator[str]:
    """Serve ``state`` on a free 127.0.0.1 port; yield its address; always stop it."""
    handler = type("Handler", (_Handler,), {"state": state, "lock": threading.Lock()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
