"""The stack's settings: the only place that reads ``pulumi.Config``.

Every key is declared once in ``KEYS`` (``infra/config_keys.py``) and once in ``Pulumi.yaml``
(type, description and default; Pulumi fills defaults in before the program runs).
Node groups and add-on versions are structured objects in the stack file
(``mlplatform:nodeGroups: {gpu: {maxSize: 2}}``, which is what
``pulumi config set --path nodeGroups.gpu.maxSize 2`` writes); ``Pulumi.yaml`` declares
their leaves as dotted paths, because its config schema has no object type.

``load_settings`` reads, converts and validates everything, collects every problem and
raises one ``ConfigError`` naming each bad key and what is allowed.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, cast

import pulumi

from components.network import LOG_RETENTION_DAYS
from infra.config_keys import (
    ADDONS,
    KEYS,
    MIN_SPOT_INSTANCE_TYPES,
    NODE_GROUP_FIELDS,
    NODE_GROUPS,
    OBJECT_ROOTS,
    PROJECT,
    SUPPORTED_KUBERNETES_VERSIONS,
    CapacityType,
    ConfigError,
    KeyType,
    NatStrategy,
    NodeGroupSettings,
    Settings,
    full_key,
)

__all__ = [
    "ADDONS",
    "KEYS",
    "MIN_SPOT_INSTANCE_TYPES",
    "NODE_GROUPS",
    "NODE_GROUP_FIELDS",
    "OBJECT_ROOTS",
    "PROJECT",
    "SUPPORTED_KUBERNETES_VERSIONS",
    "CapacityType",
    "ConfigError",
    "KeyType",
    "NatStrategy",
    "NodeGroupSettings",
    "Settings",
    "flatten",
    "full_key",
    "load_settings",
    "parse_settings",
]

_CLUSTER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,37}$")
_ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
# x86_64 NVIDIA families the AL2023 NVIDIA AMI runs on (g5g is Arm, so not here).
_GPU_FAMILY = re.compile(r"^(g4dn|g5|g6|g6e|gr6|p3|p3dn|p4d|p4de|p5|p5e|p5en)\.")
_INT = re.compile(r"^-?\d+$")


class _Reader:
    """Converts raw config values to typed ones, recording one problem per bad key."""

    def __init__(self, values: Mapping[str, Any], secret: frozenset[str]) -> None:
        self.values = values
        self.secret = secret
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        if key.split(".")[0] in self.secret:
            # Secret values never reach an error message, whatever the check quoted.
            value = self.values.get(key)
            items = value if isinstance(value, list | tuple) else [value]
            for item in [value, *items, *(_as_string_list(value) or ())]:
                if item is not None and str(item):
                    message = message.replace(repr(item), "[secret]")
                    message = message.replace(str(item), "[secret]")
        self.problems.append(f"{full_key(key)}: {message}")

    def get(self, key: str) -> Any:
        if key not in self.values:
            self.fail(key, f"missing required key (a {KEYS[key]}; Pulumi.yaml has its default)")
            return None
        value = self.values[key]
        kind = KEYS[key]
        converters: dict[KeyType, Callable[[Any], Any]] = {
            "string": _as_string,
            "integer": _as_int,
            "boolean": _as_bool,
            "array": _as_string_list,
        }
        converted = converters[kind](value)
        if converted is None:
            article = "an" if kind == "integer" else "a"
            expected = "a list of strings" if kind == "array" else f"{article} {kind}"
            self.fail(key, f"{value!r} is not {expected}")
        return converted


def _as_string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT.match(value.strip()):
        return int(value)
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _as_string_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(cast(list[str], value))
    return None


def _suggest(name: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def flatten(raw: Mapping[str, Any], secret: Iterable[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """Turn raw project config into {dotted key: value}; return it with the problems found.

    ``raw`` maps top-level project keys (no namespace) to their values as Pulumi passes
    them: strings, with structured objects JSON-encoded. Unknown keys, at the top level
    or inside ``nodeGroups``/``addonVersions``, are problems naming the full path.
    """
    secret_roots = frozenset(secret)
    values: dict[str, Any] = {}
    problems: list[str] = []
    top_level = sorted({k.split(".")[0] for k in KEYS})
    for name, value in raw.items():
        if name in OBJECT_ROOTS:
            parsed = value
            if isinstance(value, str):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    parsed = value
            if not isinstance(parsed, dict):
                shown = "[secret]" if name in secret_roots else repr(value)
                problems.append(f"{full_key(name)}: {shown} is not an object of settings")
                continue
            _walk(name, cast(dict[str, Any], parsed), values, problems, name in secret_roots)
        elif name in KEYS and "." not in name:
            values[name] = value
        elif "." in name and name.split(".")[0] in OBJECT_ROOTS:
            problems.append(
                f"{full_key(name)}: unknown key; {name.split('.')[0]} is an object: set it "
                f"with `pulumi config set --path {name} VALUE`"
            )
        else:
            problems.append(
                f"{full_key(name)}: unknown key{_suggest(name, top_level)}; "
                f"allowed: {', '.join(top_level)}"
            )
    return values, problems


def _walk(
    prefix: str, obj: dict[str, Any], out: dict[str, Any], problems: list[str], secret: bool
) -> None:
    """Flatten one structured object into ``out``, recording unknown or misplaced keys."""
    children = sorted(
        {k[len(prefix) + 1 :].split(".")[0] for k in KEYS if k.startswith(prefix + ".")}
    )
    for name, value in obj.items():
        path = f"{prefix}.{name}"
        if name not in children:
            problems.append(
                f"{full_key(path)}: unknown key{_suggest(name, children)}; "
                f"allowed: {', '.join(children)}"
            )
        elif path in KEYS:
            out[path] = value
        elif isinstance(value, dict):
            _walk(path, cast(dict[str, Any], value), out, problems, secret)
        else:
            shown = "[secret]" if secret else repr(value)
            problems.append(f"{full_key(path)}: {shown} is not an object of settings")


def _cidrs(r: _Reader, key: str, cidrs: tuple[str, ...], *, allow_world: bool) -> None:
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr)
        except ValueError:
            r.fail(key, f"{cidr!r} is not a CIDR (e.g. 203.0.113.0/24)")
            continue
        if net.prefixlen == 0 and not allow_world:
            r.fail(key, f"{cidr!r} would allow every address; list the networks that need access")


def _node_group(r: _Reader, group: str) -> NodeGroupSettings:
    def key(field: str) -> str:
        return f"nodeGroups.{group}.{field}"

    types = r.get(key("instanceTypes")) or ()
    min_size = r.get(key("minSize"))
    max_size = r.get(key("maxSize"))
    capacity = r.get(key("capacityType"))
    disk = r.get(key("diskSizeGib"))
    if r.values.get(key("instanceTypes")) is not None and not types:
        r.fail(key("instanceTypes"), "must list at least one EC2 instance type")
    for t in types:
        if not _INSTANCE_TYPE.match(t):
            r.fail(key("instanceTypes"), f"{t!r} is not an EC2 instance type (e.g. m7i.large)")
        elif group == "gpu" and not _GPU_FAMILY.match(t):
            r.fail(key("instanceTypes"), f"{t!r} has no NVIDIA GPU; use g4dn/g5/g6/g6e/p4d/p5...")
    if len(set(types)) != len(types):
        r.fail(key("instanceTypes"), "must not repeat an instance type")
    if capacity is not None and capacity not in ("ON_DEMAND", "SPOT"):
        r.fail(key("capacityType"), f"{capacity!r} is not allowed; use ON_DEMAND or SPOT")
    elif capacity == "SPOT" and len(types) < MIN_SPOT_INSTANCE_TYPES:
        r.fail(
            key("instanceTypes"),
            f"SPOT needs at least {MIN_SPOT_INSTANCE_TYPES} instance types (got {len(types)}) "
            "so that one reclaimed type does not empty the pool",
        )
    if min_size is not None and min_size < 0:
        r.fail(key("minSize"), f"{min_size} must be 0 or more")
    if max_size is not None and max_size < 1:
        r.fail(key("maxSize"), f"{max_size} must be at least 1")
    elif max_size is not None and min_size is not None and max_size < min_size:
        r.fail(key("maxSize"), f"{max_size} is below minSize {min_size}")
    if disk is not None and not 20 <= disk <= 16384:
        r.fail(key("diskSizeGib"), f"{disk} must be from 20 to 16384")
    return NodeGroupSettings(
        instance_types=tuple(types),
        min_size=min_size or 0,
        max_size=max_size or 0,
        capacity_type=cast(CapacityType, capacity),
        disk_size_gib=disk or 0,
    )


def parse_settings(raw: Mapping[str, Any], secret: Iterable[str] = ()) -> Settings:
    """Build ``Settings`` from raw project config; raise ``ConfigError`` listing every problem.

    ``raw`` maps project keys without namespace (``azCount``, ``nodeGroups``) to values as
    Pulumi passes them (strings; objects and arrays JSON-encoded; parsed values also
    accepted). ``secret`` names the keys whose values must never appear in a message.
    No defaults are applied here: Pulumi applies those from ``Pulumi.yaml``.
    """
    secret = frozenset(secret)
    values, problems = flatten(raw, secret)
    r = _Reader(values, secret)
    r.problems.extend(problems)

    name = r.get("clusterName")
    if name is not None and not _CLUSTER_NAME.match(name):
        r.fail("clusterName", f"{name!r} must be a letter then up to 37 letters, digits or '-'")
    version = r.get("kubernetesVersion")
    if version is not None and version not in SUPPORTED_KUBERNETES_VERSIONS:
        r.fail("kubernetesVersion", f"{version!r} is not one of {SUPPORTED_KUBERNETES_VERSIONS}")
    cidr = r.get("vpcCidr")
    if cidr is not None:
        try:
            net = ipaddress.ip_network(cidr)
            if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 20:
                r.fail("vpcCidr", f"{cidr!r} must be a private IPv4 range from /16 to /20")
        except ValueError:
            r.fail("vpcCidr", f"{cidr!r} is not a CIDR (e.g. 10.0.0.0/16)")
    az_count = r.get("azCount")
    if az_count is not None and not 2 <= az_count <= 6:
        r.fail("azCount", f"{az_count} is outside 2..6 (EKS needs two zones; six at most)")
    nat = r.get("natStrategy")
    if nat is not None and nat not in ("single", "per_az"):
        r.fail("natStrategy", f"{nat!r} is not allowed; use 'single' or 'per_az'")
    public = r.get("endpointPublicAccess")
    public_cidrs = r.get("publicAccessCidrs") or ()
    if public and not public_cidrs:
        r.fail("publicAccessCidrs", "required (non-empty) when endpointPublicAccess is true")
    if public is False and public_cidrs:
        r.fail("publicAccessCidrs", "only allowed when endpointPublicAccess is true")
    _cidrs(r, "publicAccessCidrs", public_cidrs, allow_world=True)
    private_cidrs = r.get("privateAccessCidrs") or ()
    _cidrs(r, "privateAccessCidrs", private_cidrs, allow_world=False)
    admins = r.get("adminRoleArns") or ()
    for arn in admins:
        if not _ROLE_ARN.match(arn):
            r.fail("adminRoleArns", f"{arn!r} is not an IAM role ARN")
    if len(set(admins)) != len(admins):
        r.fail("adminRoleArns", "must not repeat a role")
    retention = {k: r.get(k) for k in ("logRetentionDays", "flowLogRetentionDays")}
    for key, days in retention.items():
        if days is not None and days not in LOG_RETENTION_DAYS:
            r.fail(key, f"{days} is not a CloudWatch retention; use {sorted(LOG_RETENTION_DAYS)}")
    protect = r.get("protect")
    addons: dict[str, str] = {}
    for addon in ADDONS:
        pinned = r.get(f"addonVersions.{addon}")
        if pinned is not None and not _ADDON_VERSION.match(pinned):
            r.fail(f"addonVersions.{addon}", f"{pinned!r} must be pinned like v1.19.5-eksbuild.1")
        addons[addon] = pinned or ""
    proxy = addons["kube-proxy"]
    if version and _ADDON_VERSION.match(proxy) and not proxy.startswith(f"v{version}."):
        r.fail(
            "addonVersions.kube-proxy",
            f"{proxy!r} does not match kubernetesVersion {version} (kube-proxy follows the "
            "cluster's minor version)",
        )
    groups = {group: _node_group(r, group) for group in NODE_GROUPS}
    if r.problems:
        raise ConfigError(r.problems)
    # Past this point every value is present and valid; the casts only tell the checker.
    return Settings(
        cluster_name=cast(str, name),
        kubernetes_version=cast(str, version),
        vpc_cidr=cast(str, cidr),
        az_count=cast(int, az_count),
        nat_strategy=cast(NatStrategy, nat),
        endpoint_public_access=cast(bool, public),
        public_access_cidrs=tuple(public_cidrs),
        private_access_cidrs=tuple(private_cidrs),
        admin_role_arns=tuple(admins),
        log_retention_days=retention["logRetentionDays"],
        flow_log_retention_days=retention["flowLogRetentionDays"],
        protect=protect,
        addon_versions=MappingProxyType(addons),
        system=groups["system"],
        gpu=groups["gpu"],
        spot=groups["spot"],
    )


def _present_project_keys() -> list[str]:
    """Names (no namespace) of every project key the engine passed to this program."""
    from pulumi.runtime import config as runtime_config

    known = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    return sorted(k[len(prefix) :] for k in known if k.startswith(prefix))


def load_settings() -> Settings:
    """Read this stack's project config through ``pulumi.Config`` and validate it.

    Raises ``ConfigError`` naming every bad, unknown or missing key and what is allowed.
    A key marked secret is read with ``require_secret`` semantics: its value never
    appears in a message (none of today's keys needs to be secret).
    """
    from pulumi.runtime import config as runtime_config

    cfg = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    secret: set[str] = set()
    for name in _present_project_keys():
        raw[name] = cfg.get(name)
        if runtime_config.is_config_secret(full_key(name)):
            secret.add(name)
    return parse_settings(raw, secret)
