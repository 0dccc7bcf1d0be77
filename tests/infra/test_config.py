"""Stack settings: every bad value is rejected with one message naming the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra.config import KEYS, ConfigError, Settings, load_settings, parse_settings
from infra.offline import run_program
from infra.offline.stack_file import load_stack_config

ROOT = Path(__file__).resolve().parents[2]


def raw_for(stack: str) -> dict[str, Any]:
    """The project config of a real stack file as the engine passes it (defaults applied)."""
    config = load_stack_config(stack, root=ROOT)
    prefix = "mlplatform:"
    return {k[len(prefix) :]: v for k, v in config.values.items() if k.startswith(prefix)}


def with_node_group(raw: dict[str, Any], group: str, **fields: Any) -> dict[str, Any]:
    groups = json.loads(raw["nodeGroups"])
    groups.setdefault(group, {}).update(fields)
    return {**raw, "nodeGroups": json.dumps(groups)}


def rejection(raw: dict[str, Any], secret: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, secret)
    message = str(info.value)
    assert "\n" not in message, "the message must be one line"
    return message


def test_both_stack_files_parse_into_their_settings() -> None:
    dev = parse_settings(raw_for("dev"))
    prod = parse_settings(raw_for("prod"))
    assert (dev.az_count, dev.nat_strategy, dev.endpoint_public_access) == (2, "single", True)
    assert dev.public_access_cidrs and dev.node_groups["gpu"].provisioner == "karpenter"
    assert (prod.az_count, prod.nat_strategy, prod.endpoint_public_access) == (3, "per_az", False)
    assert prod.public_access_cidrs == ()
    dev_pools, prod_pools = dev.node_groups, prod.node_groups
    assert set(dev_pools) == set(prod_pools) == {"system", "gpu", "spot"}
    assert {p.preset for p in prod_pools.values()} == {"system", "gpu", "spot"}
    assert (prod_pools["system"].min_size or 0) > (dev_pools["system"].min_size or 0)
    assert (prod_pools["spot"].cpu_limit or 0) > (dev_pools["spot"].cpu_limit or 0)
    assert dev_pools["gpu"].capacity_type == "SPOT_OR_ON_DEMAND"
    assert prod_pools["gpu"].capacity_type == "ON_DEMAND"
    assert {p.provisioner for p in prod_pools.values()} == {"managed", "karpenter"}
    assert (dev.karpenter_replicas, prod.karpenter_replicas) == (1, 2)
    # Defaults from Pulumi.yaml fill what a stack leaves out (prod sets no add-on versions).
    assert prod.addon_versions["kube-proxy"].startswith("v1.35.")
    assert prod.protect and not dev.protect
    assert prod.deletion_protection and not dev.deletion_protection
    assert prod.interface_endpoints and not dev.interface_endpoints
    assert prod.support_type == dev.support_type == "STANDARD"
    assert prod.deploy_role_arn == "arn:aws:iam::123456789012:role/ci/platform-deployer"


def test_max_size_below_min_size_names_the_key() -> None:
    raw = with_node_group(raw_for("dev"), "system", minSize=2, maxSize=1)
    message = rejection(raw)
    assert (
        "mlplatform:nodeGroups.system.maxSize: 1 must be at least 1 and at least the minimum"
        in message
    )


@pytest.mark.parametrize("count", ["1", "7", "0"])
def test_az_count_outside_two_to_six(count: str) -> None:
    message = rejection({**raw_for("prod"), "azCount": count})
    assert f"mlplatform:azCount: {count} is outside 2..6" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("vpcCidr", "10.0.0.300/16"),
        ("vpcCidr", "not-a-cidr"),
        ("publicAccessCidrs", json.dumps(["203.0.113.0/24", "203.0.113"])),
        ("privateAccessCidrs", json.dumps(["10.0.0.0/40"])),
    ],
)
def test_a_cidr_that_is_not_a_cidr(key: str, value: str) -> None:
    assert f"mlplatform:{key}: " in rejection({**raw_for("dev"), key: value})
    assert "is not a CIDR" in rejection({**raw_for("dev"), key: value})


def test_vpc_cidr_must_be_private_and_sized_for_subnets() -> None:
    message = rejection({**raw_for("dev"), "vpcCidr": "8.8.0.0/16"})
    assert "mlplatform:vpcCidr: '8.8.0.0/16' must be a private IPv4 range /16 to /20" in message


def test_public_endpoint_needs_public_access_cidrs() -> None:
    raw = {**raw_for("dev"), "publicAccessCidrs": "[]"}
    message = rejection(raw)
    assert (
        "mlplatform:publicAccessCidrs: required (non-empty) when the API endpoint is public"
        in message
    )


def test_public_access_cidrs_on_a_private_endpoint_are_refused() -> None:
    raw = {**raw_for("prod"), "publicAccessCidrs": json.dumps(["203.0.113.0/24"])}
    assert (
        "mlplatform:publicAccessCidrs: only allowed when the API endpoint is public"
        in rejection(raw)
    )


def test_unknown_capacity_type() -> None:
    raw = with_node_group(raw_for("dev"), "system", capacityType="RESERVED")
    message = rejection(raw)
    assert "mlplatform:nodeGroups.system.capacityType: 'RESERVED' is not allowed" in message
    assert "ON_DEMAND or SPOT" in message


def test_spot_needs_three_instance_types() -> None:
    raw = with_node_group(raw_for("dev"), "spot", instanceTypes=["m7i.xlarge", "m6i.xlarge"])
    assert "mlplatform:nodeGroups.spot.instanceTypes: SPOT needs at least 3" in rejection(raw)


def test_gpu_pool_needs_gpu_instances() -> None:
    raw = with_node_group(raw_for("dev"), "gpu", instanceTypes=["m7i.large"])
    assert "mlplatform:nodeGroups.gpu.instanceTypes: 'm7i.large' has no NVIDIA GPU" in rejection(
        raw
    )


def test_newer_nvidia_families_are_accepted_by_the_same_rule() -> None:
    # One owner for the NVIDIA families: config accepts what the component accepts.
    types = ["p6-b200.48xlarge", "g6e.xlarge", "g6.xlarge"]
    raw = with_node_group(raw_for("dev"), "gpu", instanceTypes=types)
    assert parse_settings(raw).node_groups["gpu"].instance_types == tuple(types)


def test_a_graviton_type_in_the_spot_pool_names_the_key() -> None:
    raw = with_node_group(
        raw_for("dev"), "spot", instanceTypes=["m7g.xlarge", "m6g.xlarge", "c7g.xlarge"]
    )
    message = rejection(raw)
    assert (
        "mlplatform:nodeGroups.spot.instanceTypes: 'm7g.xlarge' is an Arm (Graviton) type"
        in message
    )
    arm = with_node_group(raw, "spot", amiType="AL2023_ARM_64_STANDARD")
    assert parse_settings(arm).node_groups["spot"].ami_type == "AL2023_ARM_64_STANDARD"


def test_adding_a_pool_is_config_only() -> None:
    raw = with_node_group(raw_for("prod"), "gpu-large", preset="gpu", instanceTypes=["p5.48xlarge"])
    pools = parse_settings(raw).node_groups
    assert pools["gpu-large"].preset == "gpu" and pools["gpu-large"].instance_types == (
        "p5.48xlarge",
    )
    unnamed = rejection(with_node_group(raw_for("dev"), "batch", minSize=1))
    assert (
        "mlplatform:nodeGroups.batch.preset: required for a pool not named after a preset"
        in unnamed
    )
    wrong = rejection(with_node_group(raw_for("dev"), "batch", preset="tpu"))
    assert (
        "mlplatform:nodeGroups.batch.preset: 'tpu' is not a preset; use one of system, gpu, spot"
        in wrong
    )
    bad_name = rejection(with_node_group(raw_for("dev"), "Big_Pool", preset="spot"))
    assert "mlplatform:nodeGroups.Big_Pool: 'Big_Pool' must be a pool name" in bad_name


def test_a_system_pool_is_required() -> None:
    raw = raw_for("dev")
    groups = json.loads(raw["nodeGroups"])
    groups["core"] = groups.pop("system") | {"preset": "spot", "provisioner": "managed"}
    message = rejection({**raw, "nodeGroups": json.dumps(groups)})
    assert "mlplatform:nodeGroups: needs a pool with preset 'system'" in message
    groups["core"]["preset"] = "system"
    del groups["core"]["provisioner"]
    assert parse_settings({**raw, "nodeGroups": json.dumps(groups)}).system_pool == "core"


@pytest.mark.parametrize(
    ("previous", "target", "expected"),
    [
        ("1.33", "1.35", "'1.35' is 2 minor versions above the running 1.33"),
        ("1.36", "1.35", "'1.35' is below the running 1.36; EKS cannot downgrade"),
        ("1.34", "1.35", None),
        ("1.35", "1.35", None),
        (None, "1.35", None),
    ],
)
def test_kubernetes_upgrades_go_one_minor_version_at_a_time(
    previous: str | None, target: str, expected: str | None
) -> None:
    raw = {**raw_for("dev"), "kubernetesVersion": target}
    if expected is None:
        assert parse_settings(raw, previous_version=previous).kubernetes_version == target
        return
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, previous_version=previous)
    assert info.value.problems == [
        f"mlplatform:kubernetesVersion: {expected}" + info.value.problems[0].split(expected, 1)[1]
    ]


def test_a_version_out_of_standard_support_is_refused_unless_extended_is_asked_for() -> None:
    raw = {**raw_for("dev"), "kubernetesVersion": "1.33"}
    raw["addonVersions"] = json.dumps(
        json.loads(raw["addonVersions"]) | {"kube-proxy": "v1.33.5-eksbuild.2"}
    )
    assert "mlplatform:kubernetesVersion: '1.33' is not in EKS standard support" in rejection(raw)
    assert parse_settings({**raw, "supportType": "EXTENDED"}).support_type == "EXTENDED"
    assert "mlplatform:supportType: 'FOREVER' must be 'STANDARD' or 'EXTENDED'" in rejection(
        {**raw, "supportType": "FOREVER"}
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("azCount", "three", "mlplatform:azCount: 'three' is not an integer"),
        ("endpointPublicAccess", "yes", "mlplatform:endpointPublicAccess: 'yes' is not a boolean"),
        ("adminRoleArns", "arn:aws:iam::1:role/x", "mlplatform:adminRoleArns: "),
        ("logRetentionDays", "ninety", "mlplatform:logRetentionDays: 'ninety' is not an integer"),
    ],
)
def test_wrong_types_at_the_top_level(key: str, value: str, expected: str) -> None:
    assert expected in rejection({**raw_for("dev"), key: value})


def test_wrong_types_inside_a_structured_object() -> None:
    raw = with_node_group(raw_for("dev"), "gpu", maxSize="two", instanceTypes="g5.xlarge")
    message = rejection(raw)
    assert "mlplatform:nodeGroups.gpu.maxSize: 'two' is not an integer" in message
    assert "mlplatform:nodeGroups.gpu.instanceTypes: 'g5.xlarge' is not a list of strings" in (
        message
    )
    not_an_object = rejection({**raw_for("dev"), "nodeGroups": "[1, 2]"})
    assert "mlplatform:nodeGroups: '[1, 2]' is not an object of settings" in not_an_object


def test_unknown_keys_in_structured_objects() -> None:
    raw = with_node_group(raw_for("dev"), "gpu", maxSzie=3)
    message = rejection(raw)
    assert "mlplatform:nodeGroups.gpu.maxSzie: unknown key (did you mean 'maxSize'?)" in message
    versions = json.loads(raw_for("dev")["addonVersions"]) | {"corends": "v1.0.0-eksbuild.1"}
    message = rejection({**raw_for("dev"), "addonVersions": json.dumps(versions)})
    assert "mlplatform:addonVersions.corends: unknown key (did you mean 'coredns'?)" in message


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    message = rejection({**raw_for("dev"), "azCnt": "3"})
    assert "mlplatform:azCnt: unknown key (did you mean 'azCount'?)" in message


def test_a_dotted_key_set_without_path_points_at_the_object() -> None:
    message = rejection({**raw_for("dev"), "nodeGroups.gpu.maxSize": "3"})
    assert "mlplatform:nodeGroups.gpu.maxSize: unknown key" in message
    assert "pulumi config set --path nodeGroups.gpu.maxSize" in message


def test_missing_required_keys_are_named() -> None:
    raw = raw_for("prod")
    del raw["kubernetesVersion"]
    del raw["nodeGroups"]
    message = rejection(raw)
    assert "mlplatform:kubernetesVersion: missing required key" in message
    assert "mlplatform:nodeGroups: missing required key (a map of pools" in message


def test_a_pool_field_left_out_takes_the_preset_default() -> None:
    raw = raw_for("prod")
    groups = json.loads(raw["nodeGroups"])
    del groups["spot"]["cpuLimit"]
    settings = parse_settings({**raw, "nodeGroups": json.dumps(groups)})
    assert settings.node_groups["spot"].cpu_limit is None  # the spot preset's 96 applies


def test_every_problem_is_collected_into_one_error() -> None:
    raw = with_node_group(raw_for("dev"), "system", minSize=3, maxSize=1)
    raw |= {"azCount": "9", "natStrategy": "cheap", "vpcCidr": "nope"}
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    keys = [p.split(": ")[0] for p in info.value.problems]
    assert sorted(keys) == sorted(
        [
            "mlplatform:azCount",
            "mlplatform:natStrategy",
            "mlplatform:vpcCidr",
            "mlplatform:nodeGroups.system.maxSize",
        ]
    )
    assert isinstance(info.value, ValueError)


def test_addon_versions_are_pinned_and_kube_proxy_follows_the_cluster() -> None:
    raw = raw_for("dev")
    versions = {"kube-proxy": "v1.32.6-eksbuild.8", "coredns": "latest"}
    raw["addonVersions"] = json.dumps(json.loads(raw["addonVersions"]) | versions)
    message = rejection(raw)
    assert "mlplatform:addonVersions.coredns: 'latest' must be pinned" in message
    assert "mlplatform:addonVersions.kube-proxy: 'v1.32.6-eksbuild.8' does not match the" in message


def test_secret_values_never_appear_in_messages() -> None:
    # A type error (reported first) and a component rule's error, both masked by key.
    typed = rejection({**raw_for("dev"), "azCount": "s3cr3t-count"}, secret=("azCount",))
    assert "mlplatform:azCount: [secret] is not an integer" in typed
    raw = {**raw_for("dev"), "vpcCidr": "s3cr3t-value"}
    raw["publicAccessCidrs"] = json.dumps(["s3cr3t-cidr"])
    message = rejection(raw, secret=("vpcCidr", "publicAccessCidrs"))
    assert "mlplatform:vpcCidr: [secret] is not a CIDR" in message
    assert "mlplatform:publicAccessCidrs: [secret] is not a CIDR" in message
    assert "s3cr3t" not in typed + message


def test_load_settings_reads_the_engine_config() -> None:
    config = load_stack_config("prod", root=ROOT)
    captured: list[Settings] = []
    run_program(
        lambda: captured.append(load_settings()),
        project="mlplatform",
        stack="prod",
        config=config.values,
    )
    (settings,) = captured
    assert settings == parse_settings(raw_for("prod"))
    assert settings.node_groups["gpu"].instance_types == ("g5.2xlarge", "g6.2xlarge")


def test_load_settings_takes_the_running_version_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = load_stack_config("prod", root=ROOT)
    monkeypatch.setenv("MLPLATFORM_DEPLOYED_KUBERNETES_VERSION", "1.33")
    with pytest.raises(ConfigError, match=r"2 minor versions above the running 1\.33"):
        run_program(load_settings, project="mlplatform", stack="prod", config=config.values)


def test_load_settings_rejects_unknown_engine_keys() -> None:
    config = load_stack_config("dev", root=ROOT)
    values = {**config.values, "mlplatform:clusterNmae": "x"}
    with pytest.raises(ConfigError, match="mlplatform:clusterNmae: unknown key"):
        run_program(load_settings, project="mlplatform", stack="dev", config=values)


def test_pulumi_yaml_declares_exactly_the_keys_the_program_reads(tmp_path: Path) -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "mlplatform"
    assert project["main"] == "infra/"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }
    schema = project["config"]
    assert set(schema) == set(KEYS)
    for key, spec in schema.items():
        assert spec["description"].strip(), key
        if KEYS[key] == "object":
            # The schema has no object type: declared untyped, set in every stack file.
            assert "type" not in spec and "default" not in spec, key
            continue
        assert spec["type"] == KEYS[key], key
        assert "default" in spec, key
        if spec["type"] == "array":
            assert spec["items"] == {"type": "string"}, key
    # The defaults and one system pool make a valid (secure) stack.
    empty = tmp_path / "Pulumi.empty.yaml"
    empty.write_text("config:\n  mlplatform:nodeGroups: {system: {}}\n")
    defaults = load_stack_config(None, empty, root=ROOT).values
    settings = parse_settings({k.split(":", 1)[1]: v for k, v in defaults.items()})
    assert settings.endpoint_public_access is False
    assert settings.nat_strategy == "per_az"
    assert settings.deletion_protection is True and settings.support_type == "STANDARD"


def test_stack_files_set_the_region() -> None:
    for stack in ("dev", "prod"):
        document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        assert document["config"]["aws:region"], stack


def test_a_config_error_is_reported_by_pulumi_without_a_stack_trace() -> None:
    # The language host prints a RunError's message alone instead of a traceback.
    error = ConfigError(["mlplatform:azCount: 9 is outside 2..6"])
    assert isinstance(error, pulumi.RunError) and isinstance(error, ValueError)
    assert str(error) == "invalid stack configuration: mlplatform:azCount: 9 is outside 2..6"


def test_the_system_pool_is_always_managed() -> None:
    raw = with_node_group(raw_for("dev"), "system", provisioner="karpenter")
    assert "mlplatform:nodeGroups.system.provisioner: 'karpenter' must be managed" in rejection(raw)
    bad = rejection(with_node_group(raw_for("dev"), "gpu", provisioner="fargate"))
    assert "mlplatform:nodeGroups.gpu.provisioner: 'fargate' is not allowed" in bad


def test_fields_belong_to_their_provisioner() -> None:
    message = rejection(with_node_group(raw_for("dev"), "gpu", minSize=1))
    assert "mlplatform:nodeGroups.gpu.minSize: applies to managed pools only" in message
    message = rejection(with_node_group(raw_for("dev"), "system", gpuLimit=1))
    assert "mlplatform:nodeGroups.system.gpuLimit: applies to karpenter pools only" in message
    mixed = rejection(with_node_group(raw_for("dev"), "system", capacityType="SPOT_OR_ON_DEMAND"))
    assert "mlplatform:nodeGroups.system.capacityType: 'SPOT_OR_ON_DEMAND' is not allowed" in mixed


def test_karpenter_pool_rules_name_their_keys() -> None:
    few = rejection(with_node_group(raw_for("dev"), "gpu", instanceTypes=["g5.xlarge"]))
    # One rule, reported once although the node shape and the Karpenter pool both hold it.
    assert few.count("SPOT needs at least 3 instance types (got 1)") == 1
    assert "mlplatform:nodeGroups.gpu.instanceTypes: SPOT needs at least 3" in few
    assert "mlplatform:nodeGroups.spot.cpuLimit: 0 must be at least 1" in rejection(
        with_node_group(raw_for("dev"), "spot", cpuLimit=0)
    )
    latest = rejection({**raw_for("dev"), "karpenterAmiAlias": "al2023@latest"})
    assert "mlplatform:karpenterAmiAlias: 'al2023@latest' must pin a release" in latest
    assert "mlplatform:karpenterReplicas: 9 must be from 1 to 5" in rejection(
        {**raw_for("dev"), "karpenterReplicas": "9"}
    )
    # The node shape's own rules hold for Karpenter pools too.
    graviton = ["m7g.xlarge", "m6g.xlarge", "c7g.xlarge"]
    arm = rejection(with_node_group(raw_for("dev"), "spot", instanceTypes=graviton))
    assert "mlplatform:nodeGroups.spot.instanceTypes: 'm7g.xlarge' is an Arm (Graviton)" in arm


def test_the_alert_webhook_url_must_be_a_secret_and_is_never_quoted() -> None:
    url = "https://hooks.example.org/T000/s3cr3t"
    message = rejection({**raw_for("prod"), "alertWebhookUrl": url})
    assert (
        "mlplatform:alertWebhookUrl: must be a secret; set it with `pulumi config set --secret"
        in (message)
    )
    assert "s3cr3t" not in message
    settings = parse_settings(
        {**raw_for("prod"), "alertWebhookUrl": url}, secret=("alertWebhookUrl",)
    )
    assert settings.alert_webhook_url == url and "s3cr3t" not in repr(settings)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("sloAvailabilityPercent", "nines", "'nines' is not a percentage like 99.9"),
        ("sloAvailabilityPercent", "100", "100.0 must be between 0 and 100"),
        ("sloErrorRatePercent", "0", "0.0 must be between 0 and 100"),
        ("prometheusRetentionSize", "500GB", "'500GB' must stay below the 200 GiB volume"),
        ("jaegerStorage", "cassandra", "'cassandra' must be 'memory' or 'badger'"),
    ],
)
def test_observability_values_are_checked_under_their_keys(
    key: str, value: str, expected: str
) -> None:
    assert f"mlplatform:{key}: {expected}" in rejection({**raw_for("prod"), key: value})


def test_the_slo_targets_reach_the_settings() -> None:
    prod = parse_settings(raw_for("prod"))
    assert (
        prod.slo_availability_percent,
        prod.slo_latency_p95_ms,
        prod.slo_error_rate_percent,
    ) == (
        99.9,
        100,
        0.1,
    )
    assert (prod.jaeger_storage, parse_settings(raw_for("dev")).jaeger_storage) == (
        "badger",
        "memory",
    )


def test_the_slo_defaults_of_the_code_are_pulumi_yamls() -> None:
    # The SLA report without --stack uses SloTargets(); a stack uses Pulumi.yaml's defaults.
    from components import SloTargets
    from infra import stack_args

    defaults = load_stack_config(None, ROOT / "Pulumi.dev.yaml", root=ROOT).values
    assert defaults["mlplatform:sloLatencyP95Ms"] == str(SloTargets().latency_p95_ms)
    assert float(defaults["mlplatform:sloAvailabilityPercent"]) == SloTargets().availability_percent
    assert stack_args.slo_targets(parse_settings(raw_for("dev"))) == SloTargets()


def test_the_configuration_doc_has_a_row_per_key() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    rows = {line.split("|")[1].strip(" `") for line in text.splitlines() if line.startswith("| `")}
    assert set(KEYS) <= rows
