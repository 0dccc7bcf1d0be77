"""Rules for Vault and for credentials in Helm values: no dev mode, a TLS listener, a seal
stanza, and no literal token or password in any release's values.

The Vault rules read the ``hashicorp/vault`` chart's values the way the chart does:
``server.dev.enabled`` wins, then ``server.ha.enabled`` (with ``server.ha.raft.config``
when raft is on, else ``server.ha.config``), else standalone (``server.standalone.config``).
A mode whose configuration is not given runs the chart's default, which disables TLS and
has no seal: that is judged as the default it is. The seal key's rotation is the
``kms-key-rotation`` rule's, which judges every KMS key in the stack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from policy.rules_base import (
    MISSING,
    ResourceRule,
    as_bool,
    chart_name,
    dig,
    is_unknown,
    mandatory_rule,
)
from policy.rules_k8s import HELM_TYPES

# Keys that hold a credential themselves. A deliberate copy of ``_SECRET_KEY`` in
# components/_k8s.py, as ``literal_secret_paths`` is of its ``secret_value_paths`` (the
# pack is published on its own, and judges unknown values too); a test keeps the
# patterns agreeing.
SECRET_KEY = re.compile(
    r"^(secret|apikey|api_key|privatekey|accesskey|secretaccesskey|clientsecret)$"
    r"|(password|passwd|token)$",
    re.I,
)
_TLS_OFF = re.compile(r'"?tls_disable"?\s*[=:]\s*"?(1|true)"?', re.I)
_SEAL = re.compile(r'^\s*seal\s+"|"seal"\s*:', re.M)


def _is_vault(props: Mapping[str, Any]) -> bool:
    return chart_name(props) == "vault"


def _server_config(values: Any) -> tuple[str, Any]:
    """The active mode's config key and its value (MISSING: the chart's default)."""
    server = dig(values, "server")
    if as_bool(dig(server, "ha", "enabled")):
        raft = as_bool(dig(server, "ha", "raft", "enabled"))
        key = "server.ha.raft.config" if raft else "server.ha.config"
        return key, dig(server, "ha", "raft", "config") if raft else dig(server, "ha", "config")
    return "server.standalone.config", dig(server, "standalone", "config")


def _text(config: Any) -> str | None:
    if is_unknown(config):
        return None
    return config if isinstance(config, str) else json.dumps(config)


def _dev_mode(_: str, props: Mapping[str, Any]) -> list[str]:
    if not _is_vault(props):
        return []
    dev = dig(props, "values", "server", "dev")
    problems: list[str] = []
    if as_bool(dig(dev, "enabled")):
        problems.append(
            "server.dev.enabled is true: dev mode keeps secrets in memory, starts unsealed "
            "with a known root token and serves plain HTTP"
        )
    token = dig(dev, "devRootToken")
    if token is not MISSING and not is_unknown(token) and token not in ("", None):
        problems.append("server.dev.devRootToken is set: no root token belongs in values")
    return problems


def _tls_listener(_: str, props: Mapping[str, Any]) -> list[str]:
    if not _is_vault(props) or as_bool(dig(props, "values", "server", "dev", "enabled")):
        return []
    values = dig(props, "values")
    problems: list[str] = []
    disabled = dig(values, "global", "tlsDisable")
    if not is_unknown(disabled) and (disabled is MISSING or as_bool(disabled)):
        problems.append(
            "global.tlsDisable is not false (the chart's default is true): the chart's "
            "probes, Services and VAULT_ADDR use plain HTTP"
        )
    key, config = _server_config(values)
    text = "tls_disable = 1" if config is MISSING else _text(config)
    if text is not None and _TLS_OFF.search(text):
        shown = "the chart's default config" if config is MISSING else key
        problems.append(f"{shown} has a listener with tls_disable: Vault's API is plain HTTP")
    return problems


def _seal(_: str, props: Mapping[str, Any]) -> list[str]:
    if not _is_vault(props) or as_bool(dig(props, "values", "server", "dev", "enabled")):
        return []
    key, config = _server_config(dig(props, "values"))
    if config is MISSING:
        return [f"{key} is not set: the chart's default config has no seal stanza"]
    text = _text(config)
    if text is None or _SEAL.search(text):
        return []
    return [
        f"{key} has no seal stanza: every restarted pod stays sealed until people bring "
        'key shares; configure auto-unseal (seal "awskms")'
    ]


def literal_secret_paths(values: Any, path: str = "") -> list[str]:
    """Dotted paths whose key names a credential and whose value is a literal (a string
    or number known now; not a mapping, a boolean, an empty value or an unknown)."""
    found: list[str] = []
    if is_unknown(values):
        return found
    if isinstance(values, Mapping):
        for key, value in values.items():
            here = f"{path}.{key}" if path else str(key)
            literal = isinstance(value, str | int | float) and not isinstance(value, bool)
            if SECRET_KEY.search(str(key)) and literal and value != "" and not is_unknown(value):
                found.append(here)
            found += literal_secret_paths(value, here)
    elif isinstance(values, list | tuple):
        for index, item in enumerate(values):
            found += literal_secret_paths(item, f"{path}[{index}]")
    return found


def _literal_secret(_: str, props: Mapping[str, Any]) -> list[str]:
    return [
        f"values.{path} is a literal credential (kept in the Helm release Secret and the "
        "state in plain text): put it in a Kubernetes Secret and pass its name"
        for path in literal_secret_paths(dig(props, "values"))
    ]


RULES: list[ResourceRule] = [
    mandatory_rule(
        "vault-no-dev-mode",
        set(HELM_TYPES),
        "A Vault release never runs dev mode or sets a dev root token.",
        "Dev mode is in-memory, unsealed, plain HTTP and has a known root token.",
        "Vault docs (Dev server mode: never in production); vault-helm values.yaml",
        _dev_mode,
    ),
    mandatory_rule(
        "vault-tls-listener",
        set(HELM_TYPES),
        "A Vault release serves TLS: global.tlsDisable false and no listener with tls_disable.",
        "Vault's API carries tokens and secrets; without TLS anyone on the path reads them.",
        "Vault production hardening (end-to-end TLS); vault-helm values.yaml",
        _tls_listener,
    ),
    mandatory_rule(
        "vault-seal-configured",
        set(HELM_TYPES),
        "A Vault release's server config has a seal stanza (auto-unseal).",
        "Without one every restart leaves Vault sealed until people bring key shares.",
        "Vault docs (Seal configuration, awskms); Vault production hardening",
        _seal,
    ),
    mandatory_rule(
        "helm-no-literal-secret",
        set(HELM_TYPES),
        "No Helm values key named like a token, password or secret holds a literal value.",
        "Release values sit in plain text in the Helm release Secret and the state.",
        "CIS Kubernetes 5.4.1 (secrets as files, not literals); Helm docs (values files)",
        _literal_secret,
    ),
]
