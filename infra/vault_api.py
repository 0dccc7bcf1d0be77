"""The few Vault HTTP API calls ``infra.vault_setup`` makes, over the standard library.

Each call names the ACL path and capabilities it needs (:class:`Need`), so that a 403 is
reported as the capability the token lacks rather than as Vault's bare "permission
denied", and so that the operator policy the tool prints is exactly what it calls.

The token is read by the caller from ``VAULT_TOKEN`` and held only in this object: it is
sent in the ``X-Vault-Token`` header and never printed or written anywhere. TLS is
verified against ``VAULT_CACERT`` when given (the platform's internal CA), else the
system's trust store; plain ``http://`` is refused except to a loopback address.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

Method = Literal["GET", "POST"]
Capability = Literal["read", "create", "update", "sudo"]


class VaultError(Exception):
    """Vault refused a call or could not be reached; the message is one line."""


class UsageError(Exception):
    """The environment or the arguments are wrong (exit 2); the message is one line."""


@dataclass(frozen=True)
class Need:
    """The ACL path and capabilities one call needs."""

    path: str
    capabilities: tuple[Capability, ...]


def need(method: Method, path: str, *, sudo: bool = False) -> Need:
    """What ``method`` on ``path`` needs: ``read`` for GET, ``create`` and ``update`` for
    POST (Vault checks ``create`` when the path is new, ``update`` when it exists), plus
    ``sudo`` on the root-protected ``sys/`` paths."""
    caps: tuple[Capability, ...] = ("read",) if method == "GET" else ("create", "update")
    return Need(path, (*caps, "sudo") if sudo else caps)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class VaultClient:
    """Calls under ``<address>/v1/`` with ``token``.

    Raises :class:`UsageError` for an address that is not ``https://`` (or ``http://`` to a
    loopback address, as in a test or through an SSH tunnel) or a CA file that cannot be
    read.
    """

    def __init__(self, address: str, token: str, *, ca_file: str | None, timeout_s: float = 10):
        parsed = urllib.parse.urlsplit(address)
        if parsed.scheme not in ("https", "http") or not parsed.hostname:
            raise UsageError(f"VAULT_ADDR {address!r}: must be an https:// URL")
        if parsed.scheme == "http" and not _loopback(parsed.hostname):
            raise UsageError(
                f"VAULT_ADDR {address!r}: plain http would send the token unencrypted; use "
                "https:// (e.g. https://127.0.0.1:8200 through kubectl port-forward)"
            )
        try:
            self._context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"VAULT_CACERT {ca_file!r}: cannot read a CA bundle ({exc})") from None
        self._base = address.rstrip("/") + "/v1/"
        self._token = token
        self._timeout = timeout_s

    def __repr__(self) -> str:
        return f"VaultClient({self._base!r})"

    def call(
        self, method: Method, path: str, body: dict[str, Any] | None, required: Need
    ) -> dict[str, Any] | None:
        """Send one request; return the JSON body, or None for 204 and 404 (a path that
        does not exist yet). Raises :class:`VaultError` naming ``required`` on a 403 and
        Vault's own message on any other error."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self._base + path,
            data=data,
            method=method,
            headers={"X-Vault-Token": self._token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._context) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code == 403:
                needed = ", ".join(required.capabilities)
                lacking = self._lacking(required)
                what = f"lacks [{', '.join(lacking)}]" if lacking else f"needs [{needed}]"
                raise VaultError(
                    f'permission denied on {method} /v1/{path}: the token {what} on path "'
                    f'{required.path}" (it needs {needed}; print the whole operator policy '
                    "with --print-policy)"
                ) from None
            raise VaultError(f"{method} /v1/{path}: HTTP {exc.code}: {_errors(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise VaultError(f"cannot reach Vault at {self._base[:-4]}: {reason}") from None
        return json.loads(text) if text.strip() else None

    def _lacking(self, required: Need) -> list[str]:
        """The capabilities of ``required`` the token does not hold, asked of
        ``sys/capabilities-self`` (every token may ask about itself); empty when Vault
        does not say."""
        try:
            answer = self.call(
                "POST", "sys/capabilities-self", {"paths": [required.path]}, Need("", ())
            )
        except VaultError:
            return []
        held = data_of(answer).get(required.path)
        if not isinstance(held, list):
            return []
        if "root" in held:
            return []
        return [c for c in required.capabilities if c not in held]


def _errors(exc: urllib.error.HTTPError) -> str:
    try:
        document = json.loads(exc.read().decode() or "{}")
    except ValueError:
        return exc.reason or "no message"
    errors = document.get("errors") if isinstance(document, dict) else None
    lines = [" ".join(str(e).split()) for e in errors] if isinstance(errors, list) else []
    return "; ".join(lines) or str(exc.reason)


def data_of(document: dict[str, Any] | None) -> dict[str, Any]:
    """The payload of a read: Vault wraps most in ``data``; a few list endpoints
    (``sys/audit``) answer with the map itself."""
    if not document:
        return {}
    inner = document.get("data")
    return inner if isinstance(inner, dict) else document
