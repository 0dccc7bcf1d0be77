"""The stack's settings: the only place that reads ``pulumi.Config``.

Every key is declared once in ``KEYS`` (``infra/config_keys.py``) and once in ``Pulumi.yaml``
(type, description and default; Pulumi fills defaults in before the program runs).
Add-on versions are an object whose leaves ``Pulumi.yaml`` declares as dotted paths;
``nodeGroups`` is a map of pools (``mlplatform:nodeGroups: {gpu: {maxSize: 2}}``, which
is what ``pulumi config set --path nodeGroups.gpu.maxSize 2`` writes).

``parse_settings`` converts the raw values to types, then runs the components' own
validators over the arguments the program would build (``infra/stack_args.py``) and
reports each problem under the key its value came from. Only rules that exist because of
configuration live here: types, unknown keys, pool presets, the system pool, and the
one-minor-version upgrade step. Every problem is collected into one ``ConfigError``.

The only reader of configuration, kept in one module on purpose (type conversion, the
pool map, the cross-key rules and the mapping of component problems to keys), which is
why it runs past 300 lines.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import pulumi

from components import (
    PRESETS,
    Problem,
    validate_backups_args,
    validate_cluster_addons_args,
    validate_cluster_args,
    validate_ingress_args,
    validate_karpenter_args,
    validate_mesh_args,
    validate_mlflow_server_args,
    validate_network_args,
    validate_node_group_args,
    validate_observability_args,
    validate_tenancy_args,
    validate_vault_args,
    validate_vault_snapshots_args,
)
from components._aws import KUBERNETES_VERSION
from components._validate import NO_VALUE
from components.workloads.container_image import validate_container_image_args
from components.workloads.inference_args import validate_inference_service_args
from infra import stack_args
from infra import stack_args_mesh as mesh_stack
from infra import stack_args_vault as vault_stack
from infra.config_inference import read_inference, service_keys
from infra.config_keys import (
    ADDONS,
    KEYS,
    OBJECT_ROOTS,
    POOL_FIELDS,
    PROJECT,
    BackupSettings,
    ConfigError,
    KeyType,
    MlflowSettings,
    NodeGroupSettings,
    Settings,
    full_key,
)

__all__ = [
    "KEYS",
    "PREVIOUS_VERSION_ENV",
    "ConfigError",
    "NodeGroupSettings",
    "Settings",
    "flatten",
    "full_key",
    "load_settings",
    "parse_settings",
]

PREVIOUS_VERSION_ENV = "MLPLATFORM_DEPLOYED_KUBERNETES_VERSION"
"""Environment variable naming the Kubernetes version the stack runs now (the deploy
workflow sets it from ``pulumi stack output kubernetesVersion``)."""

_INT = re.compile(r"^-?\d+$")
_POOL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")


class _Reader:
    """Converts raw config values to typed ones, recording one problem per bad key.

    A message is decided before it is formatted: the value of a secret key is never put
    into it.
    """

    def __init__(self, values: Mapping[str, Any], secret: frozenset[str]) -> None:
        self.values = values
        self.secret = secret
        self.problems: list[str] = []

    def fail(self, key: str, rule: str, value: Any = NO_VALUE) -> None:
        shown = Problem(key, rule, value).describe(show_value=key.split(".")[0] not in self.secret)
        line = f"{full_key(key)}: {shown}"
        # Two components may own the same value (a pool's node shape and its Karpenter
        # pool both check spot diversity): report the problem once.
        if line not in self.problems:
            self.problems.append(line)

    def convert(self, key: str, kind: KeyType, value: Any) -> Any:
        converters: dict[KeyType, Callable[[Any], Any]] = {
            "string": _as_string,
            "integer": _as_int,
            "boolean": _as_bool,
            "array": _as_string_list,
        }
        converted = converters[kind](value)
        if converted is None:
            article = "an" if kind == "integer" else "a"
            self.fail(
                key,
                "is not a list of strings" if kind == "array" else f"is not {article} {kind}",
                value,
            )
        return converted

    def get(self, key: str) -> Any:
        if key not in self.values:
            self.fail(key, f"missing required key (a {KEYS[key]}; Pulumi.yaml has its default)")
            return None
        return self.convert(key, KEYS[key], self.values[key])


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


def _as_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return cast(dict[str, Any], value) if isinstance(value, dict) else None


def _suggest(name: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def flatten(raw: Mapping[str, Any], secret: Iterable[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """Turn raw project config into {key: value}; return it with the problems found.

    ``raw`` maps top-level project keys (no namespace) to their values as Pulumi passes
    them: strings, with structured objects JSON-encoded. ``addonVersions``, ``ingress``,
    ``mesh`` and ``vault`` (``OBJECT_ROOTS``) are flattened into dotted keys;
    ``nodeGroups`` stays one object (parsed later). Unknown keys, at the top level or
    inside such an object, are problems naming the full path.
    """
    secret_roots = frozenset(secret)
    values: dict[str, Any] = {}
    problems: list[str] = []
    top_level = sorted({k.split(".")[0] for k in KEYS})
    for name, value in raw.items():
        root = name.split(".")[0]
        if name in OBJECT_ROOTS:
            parsed = _as_object(value)
            if parsed is None:
                shown = "[secret]" if name in secret_roots else repr(value)
                problems.append(f"{full_key(name)}: {shown} is not an object of settings")
                continue
            children = sorted(k.split(".", 1)[1] for k in KEYS if k.startswith(name + "."))
            for child, item in parsed.items():
                path = f"{name}.{child}"
                if path in KEYS:
                    values[path] = item
                else:
                    problems.append(
                        f"{full_key(path)}: unknown key{_suggest(child, children)}; "
                        f"allowed: {', '.join(children)}"
                    )
        elif name in KEYS and "." not in name:
            values[name] = value
        elif "." in name and (root in OBJECT_ROOTS or KEYS.get(root) == "object"):
            problems.append(
                f"{full_key(name)}: unknown key; {root} is an object: set it "
                f"with `pulumi config set --path {name} VALUE`"
            )
        else:
            problems.append(
                f"{full_key(name)}: unknown key{_suggest(name, top_level)}; "
                f"allowed: {', '.join(top_level)}"
            )
    return values, problems


def _pool(r: _Reader, pool: str, raw: Any) -> NodeGroupSettings | None:
    """Read one ``nodeGroups.<pool>`` entry; ``None`` (with problems recorded) when bad."""
    base = f"nodeGroups.{pool}"
    if not _POOL_NAME.match(pool):
        r.fail(base, "must be a pool name: up to 32 of a-z, 0-9 and '-' (it labels nodes)", pool)
    entry = _as_object(raw) if not isinstance(raw, str) else None
    if entry is None:
        r.fail(base, "is not an object of pool settings", raw)
        return None
    fields: dict[str, Any] = {}
    for name, value in entry.items():
        if name not in POOL_FIELDS:
            r.fail(
                f"{base}.{name}",
                f"unknown key{_suggest(name, POOL_FIELDS)}; allowed: {', '.join(POOL_FIELDS)}",
            )
            continue
        converted = r.convert(f"{base}.{name}", POOL_FIELDS[name], value)
        if converted is not None:
            fields[name] = converted
    preset = fields.get("preset", pool if pool in PRESETS else None)
    if preset is None:
        r.fail(
            f"{base}.preset",
            f"required for a pool not named after a preset; use one of {', '.join(PRESETS)}",
        )
        return None
    if preset not in PRESETS:
        r.fail(f"{base}.preset", f"is not a preset; use one of {', '.join(PRESETS)}", preset)
        return None
    provisioner = fields.get("provisioner", PRESETS[preset].provisioner)
    if provisioner not in ("managed", "karpenter"):
        r.fail(f"{base}.provisioner", "is not allowed; use managed or karpenter", provisioner)
        return None
    if provisioner == "karpenter" and preset == "system":
        r.fail(
            f"{base}.provisioner",
            "must be managed for the system pool (Karpenter itself runs there)",
            provisioner,
        )
        return None
    capacity = fields.get("capacityType")
    allowed = ("ON_DEMAND", "SPOT", "SPOT_OR_ON_DEMAND")[: 3 if provisioner == "karpenter" else 2]
    if capacity is not None and capacity not in allowed:
        r.fail(f"{base}.capacityType", f"is not allowed; use {' or '.join(allowed)}", capacity)
        return None
    karpenter_only = [k for k in ("cpuLimit", "memoryLimitGib", "gpuLimit") if k in fields]
    managed_only = [k for k in ("minSize", "maxSize", "criticalAddonsOnly") if k in fields]
    wrong = karpenter_only if provisioner == "managed" else managed_only
    for key in wrong:
        other = "karpenter" if provisioner == "managed" else "managed"
        r.fail(
            f"{base}.{key}",
            f"applies to {other} pools only (this pool's provisioner is {provisioner}; "
            "Karpenter pools are bounded by cpuLimit, memoryLimitGib and gpuLimit)",
        )
    if wrong:
        return None
    return NodeGroupSettings(
        preset=preset,
        provisioner=provisioner,
        cpu_limit=fields.get("cpuLimit"),
        memory_limit_gib=fields.get("memoryLimitGib"),
        gpu_limit=fields.get("gpuLimit"),
        instance_types=fields.get("instanceTypes"),
        min_size=fields.get("minSize"),
        max_size=fields.get("maxSize"),
        capacity_type=capacity,
        disk_size_gib=fields.get("diskSizeGib"),
        ami_type=fields.get("amiType"),
        critical_addons_only=bool(fields.get("criticalAddonsOnly", False)),
    )


def _node_groups(r: _Reader) -> dict[str, NodeGroupSettings]:
    raw = r.values.get("nodeGroups")
    if raw is None:
        r.fail(
            "nodeGroups", f"missing required key (a map of pools; presets: {', '.join(PRESETS)})"
        )
        return {}
    pools = _as_object(raw)
    if pools is None:
        r.fail("nodeGroups", "is not an object of settings", raw)
        return {}
    groups = {name: _pool(r, name, entry) for name, entry in sorted(pools.items())}
    if not any(g is not None and g.preset == "system" for g in groups.values()) and all(
        g is not None for g in groups.values()
    ):
        r.fail(
            "nodeGroups", "needs a pool with preset 'system' (CoreDNS and the add-ons run there)"
        )
    return {name: g for name, g in groups.items() if g is not None}


PERCENT_KEYS = ("sloAvailabilityPercent", "sloErrorRatePercent", "mesh.traceSamplingPercent")


def _percent(r: _Reader, key: str, value: str | None) -> float:
    """A percentage given as a string (the schema has no number type): ``"99.9"``. Its
    range is the SLO's own rule (``slo_problems``)."""
    try:
        return float(value or "")
    except ValueError:
        r.fail(key, "is not a percentage like 99.9", value)
        return 0.0


def upgrade_problems(previous: str | None, target: str) -> list[str]:
    """Return the problem with moving a cluster from ``previous`` to ``target`` (EKS
    upgrades one minor version at a time and never downgrades); none when ``previous``
    is unknown."""
    old, new = KUBERNETES_VERSION.match(previous or ""), KUBERNETES_VERSION.match(target)
    if not old or not new:
        return []
    step = int(new.group(1)) - int(old.group(1))
    if step > 1:
        between = f"1.{int(old.group(1)) + 1}"
        return [
            f"{target!r} is {step} minor versions above the running {previous}; EKS upgrades "
            f"one minor version at a time: set {between}, run `pulumi up`, then go on"
        ]
    if step < 0:
        return [f"{target!r} is below the running {previous}; EKS cannot downgrade a cluster"]
    return []


def _component_problems(r: _Reader, settings: Settings) -> None:
    """Run every component's validator over the stack's arguments, naming keys."""
    tags = stack_args.platform_tags(settings)
    checks: list[tuple[list[Problem], Mapping[str, str]]] = [
        (validate_network_args(stack_args.network_args(settings, tags)), stack_args.NETWORK_KEYS),
        (validate_cluster_args(stack_args.cluster_args(settings, tags)), stack_args.CLUSTER_KEYS),
    ]
    if settings.node_groups:
        addons = stack_args.cluster_addons_args(settings, tags)
        checks.append((validate_cluster_addons_args(addons), stack_args.CLUSTER_ADDONS_KEYS))
    for pool in settings.node_groups:
        # The node shape's rules (instance families, AMI architecture) hold for every
        # pool, whoever provides its nodes.
        args = stack_args.node_group_args(settings, pool, tags)
        checks.append((validate_node_group_args(args), stack_args.pool_keys(pool)))
    observability = validate_observability_args(stack_args.observability_args(settings))
    checks.append((observability, stack_args.OBSERVABILITY_KEYS))
    checks += [
        (validate_mesh_args(mesh_stack.mesh_args(settings)), mesh_stack.MESH_KEYS),
        (validate_ingress_args(mesh_stack.ingress_args(settings)), mesh_stack.INGRESS_KEYS),
        (validate_tenancy_args(mesh_stack.tenancy_args(settings, tags)), mesh_stack.TENANCY_KEYS),
    ]
    backups = validate_backups_args(stack_args.backups_args(settings, tags))
    checks.append((backups, stack_args.BACKUPS_KEYS))
    for key, value in (
        ("backups.rpoHours", settings.backups.rpo_hours),
        ("backups.databaseRpoMinutes", settings.backups.database_rpo_minutes),
        ("backups.vaultSnapshotRpoHours", settings.backups.vault_snapshot_rpo_hours),
    ):
        if value < 1:
            r.fail(key, "must be at least 1", value)
    # mlflow.image is the image component's rule (a bad digest reported once, not twice).
    mlflow = validate_mlflow_server_args(
        stack_args.mlflow_server_args(settings, tags, image=stack_args.PLACEHOLDER_MLFLOW_IMAGE)
    )
    checks.append((mlflow, stack_args.MLFLOW_KEYS))
    mlflow_image = validate_container_image_args(stack_args.mlflow_image_args(settings, tags))
    checks.append((mlflow_image, {"image": "mlflow.image"}))
    if settings.vault_enabled:
        vault = validate_vault_args(vault_stack.vault_args(settings, tags))
        checks.append((vault, vault_stack.VAULT_KEYS))
        snapshots = validate_vault_snapshots_args(vault_stack.vault_snapshots_args(settings, tags))
        checks.append((snapshots, vault_stack.VAULT_SNAPSHOT_KEYS))
    if settings.pools("karpenter"):
        karpenter = validate_karpenter_args(stack_args.karpenter_args(settings, tags))
        checks.append((karpenter, stack_args.karpenter_keys(settings)))
    if settings.inference is not None:
        image = validate_container_image_args(stack_args.serving_image_args(settings, tags))
        checks.append((image, {"image": "inference.image"}))
        for name, service in settings.inference.services.items():
            if settings.pool_for(service.placement) is None and service.placement in PRESETS:
                r.fail(
                    f"inference.services.{name}.placement",
                    f"needs a pool with preset {service.placement!r} in nodeGroups",
                    service.placement,
                )
            args = stack_args.inference_service_args(settings, name, tags)
            checks.append(
                (validate_inference_service_args(name, args), service_keys(name, service))
            )
    for problems, keys in checks:
        for problem in problems:
            r.fail(stack_args.key_for(problem.field, keys), problem.rule, problem.value)


def parse_settings(
    raw: Mapping[str, Any], secret: Iterable[str] = (), *, previous_version: str | None = None
) -> Settings:
    """Build ``Settings`` from raw project config; raise ``ConfigError`` listing every problem.

    ``raw`` maps project keys without namespace (``azCount``, ``nodeGroups``) to values as
    Pulumi passes them (strings; objects and arrays JSON-encoded; parsed values also
    accepted). ``secret`` names the keys whose values must never appear in a message.
    ``previous_version`` is the Kubernetes version the cluster runs now, when known.
    No defaults are applied here: Pulumi applies those from ``Pulumi.yaml``.
    """
    secret = frozenset(secret)
    values, problems = flatten(raw, secret)
    r = _Reader(values, secret)
    r.problems.extend(problems)
    plain = {key: r.get(key) for key in KEYS if KEYS[key] != "object"}
    groups = _node_groups(r)
    raw_inference = values.get("inference")
    inference_object = None if raw_inference is None else _as_object(raw_inference)
    if raw_inference is not None and inference_object is None:
        r.fail("inference", "is not an object of settings", raw_inference)
    inference = read_inference(r, inference_object)
    percentages = {key: _percent(r, key, plain[key]) for key in PERCENT_KEYS}
    if plain["alertWebhookUrl"] and "alertWebhookUrl" not in secret:
        # The URL is a credential (anyone holding it can post alerts): it must be stored
        # encrypted, and the message must not repeat it.
        r.problems.append(
            f"{full_key('alertWebhookUrl')}: must be a secret; set it with "
            "`pulumi config set --secret alertWebhookUrl URL`"
        )
    if r.problems:
        raise ConfigError(r.problems)
    # Past this point every value is present and of its type; the casts tell the checker.
    settings = Settings(
        cluster_name=plain["clusterName"],
        kubernetes_version=plain["kubernetesVersion"],
        support_type=plain["supportType"],
        deletion_protection=plain["deletionProtection"],
        vpc_cidr=plain["vpcCidr"],
        az_count=plain["azCount"],
        nat_strategy=plain["natStrategy"],
        interface_endpoints=plain["interfaceEndpoints"],
        endpoint_public_access=plain["endpointPublicAccess"],
        public_access_cidrs=plain["publicAccessCidrs"],
        private_access_cidrs=plain["privateAccessCidrs"],
        admin_role_arns=plain["adminRoleArns"],
        deploy_role_arn=plain["deployRoleArn"] or None,
        log_retention_days=plain["logRetentionDays"],
        flow_log_retention_days=plain["flowLogRetentionDays"],
        protect=plain["protect"],
        karpenter_ami_alias=plain["karpenterAmiAlias"],
        karpenter_replicas=plain["karpenterReplicas"],
        addon_versions=MappingProxyType({a: plain[f"addonVersions.{a}"] for a in ADDONS}),
        node_groups=MappingProxyType(groups),
        prometheus_retention=plain["prometheusRetention"],
        prometheus_retention_size=plain["prometheusRetentionSize"],
        prometheus_storage_gib=plain["prometheusStorageGib"],
        jaeger_storage=plain["jaegerStorage"],
        jaeger_retention=plain["jaegerRetention"],
        slo_availability_percent=percentages["sloAvailabilityPercent"],
        slo_latency_p95_ms=plain["sloLatencyP95Ms"],
        slo_error_rate_percent=percentages["sloErrorRatePercent"],
        runbook_base_url=plain["runbookBaseUrl"],
        alert_webhook_url=plain["alertWebhookUrl"] or None,
        ml_engineer_role_arns=plain["mlEngineerRoleArns"],
        ingress_public=plain["ingress.public"],
        ingress_domain=plain["ingress.domain"],
        ingress_hosted_zone_id=plain["ingress.hostedZoneId"],
        ingress_gateway_replicas=plain["ingress.gatewayReplicas"],
        mesh_istiod_replicas=plain["mesh.istiodReplicas"],
        mesh_trace_sampling_percent=percentages["mesh.traceSamplingPercent"],
        inference=inference,
        mlflow=MlflowSettings(
            image=plain["mlflow.image"],
            instance_class=plain["mlflow.instanceClass"],
            allocated_storage_gib=plain["mlflow.allocatedStorageGib"],
            max_allocated_storage_gib=plain["mlflow.maxAllocatedStorageGib"],
            backup_retention_days=plain["mlflow.backupRetentionDays"],
            multi_az=plain["mlflow.multiAz"],
            deletion_protection=plain["mlflow.deletionProtection"],
            replicas=plain["mlflow.replicas"],
            workers=plain["mlflow.workers"],
            ci_runner_cidrs=plain["mlflow.ciRunnerCidrs"],
            access_log_bucket=plain["mlflow.accessLogBucket"] or None,
        ),
        backups=BackupSettings(
            schedule=plain["backups.schedule"],
            ttl_hours=plain["backups.ttlHours"],
            rpo_hours=plain["backups.rpoHours"],
            database_rpo_minutes=plain["backups.databaseRpoMinutes"],
            vault_snapshot_schedule=plain["backups.vaultSnapshotSchedule"],
            vault_snapshot_retention_days=plain["backups.vaultSnapshotRetentionDays"],
            vault_snapshot_rpo_hours=plain["backups.vaultSnapshotRpoHours"],
        ),
        vault_enabled=plain["vault.enabled"],
        vault_replicas=plain["vault.replicas"],
        vault_data_storage_gib=plain["vault.dataStorageGib"],
        vault_audit_storage_gib=plain["vault.auditStorageGib"],
        vault_ui=plain["vault.ui"],
    )
    _component_problems(r, settings)
    for problem in upgrade_problems(previous_version, settings.kubernetes_version):
        r.problems.append(f"{full_key('kubernetesVersion')}: {problem}")
    if r.problems:
        raise ConfigError(r.problems)
    return settings


def stack_settings(stack: str, config_file: Path | None = None) -> Settings:
    """Read and validate ``Pulumi.<stack>.yaml`` (or ``config_file``) outside the engine,
    for the operator tools: ``Pulumi.yaml``'s defaults fill what the stack leaves out,
    secret values stay placeholders.

    Raises ``infra.offline.stack_file.PlanInputError`` for an unknown stack or an
    unreadable file, ``ConfigError`` naming every bad key.
    """
    from infra.offline.stack_file import load_stack_config

    config = load_stack_config(stack, config_file)
    prefix = f"{PROJECT}:"
    raw = {k[len(prefix) :]: v for k, v in config.values.items() if k.startswith(prefix)}
    secret = [k[len(prefix) :] for k in config.secret_keys if k.startswith(prefix)]
    return parse_settings(raw, secret)


def _present_project_keys() -> list[str]:
    """Names (no namespace) of every project key the engine passed to this program."""
    from pulumi.runtime import config as runtime_config

    known = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{PROJECT}:"
    return sorted(k[len(prefix) :] for k in known if k.startswith(prefix))


def load_settings(previous_version: str | None = None) -> Settings:
    """Read this stack's project config through ``pulumi.Config`` and validate it.

    ``previous_version`` (default: the ``MLPLATFORM_DEPLOYED_KUBERNETES_VERSION``
    environment variable, if set) is the Kubernetes version the cluster runs now.
    Raises ``ConfigError`` naming every bad, unknown or missing key and what is allowed;
    the value of a secret key never appears in a message.
    """
    from pulumi.runtime import config as runtime_config

    cfg = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    secret: set[str] = set()
    for name in _present_project_keys():
        raw[name] = cfg.get(name)
        if runtime_config.is_config_secret(full_key(name)):
            secret.add(name)
    previous = previous_version or os.environ.get(PREVIOUS_VERSION_ENV) or None
    return parse_settings(raw, secret, previous_version=previous)
