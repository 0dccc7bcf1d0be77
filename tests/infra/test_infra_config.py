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
    groups[group].update(fields)
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
    assert dev.public_access_cidrs and dev.gpu.min_size == 0
    assert (prod.az_count, prod.nat_strategy, prod.endpoint_public_access) == (3, "per_az", False)
    assert prod.public_access_cidrs == ()
    assert prod.system.min_size > dev.system.min_size
    assert prod.spot.max_size > dev.spot.max_size
    assert dev.spot.capacity_type == "SPOT" and len(dev.spot.instance_types) >= 3
    assert prod.system.capacity_type == "ON_DEMAND"
    # Defaults from Pulumi.yaml fill what a stack leaves out (prod sets no add-on versions).
    assert prod.addon_versions["kube-proxy"].startswith("v1.33.")
    assert prod.protect and not dev.protect


def test_max_size_below_min_size_names_the_key() -> None:
    raw = with_node_group(raw_for("dev"), "gpu", minSize=2, maxSize=1)
    assert "mlplatform:nodeGroups.gpu.maxSize: 1 is below minSize 2" in rejection(raw)


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
    assert (
        "mlplatform:vpcCidr: '8.8.0.0/16' must be a private IPv4 range from /16 to /20" in message
    )


def test_public_endpoint_needs_public_access_cidrs() -> None:
    raw = {**raw_for("dev"), "publicAccessCidrs": "[]"}
    message = rejection(raw)
    assert "mlplatform:publicAccessCidrs: required (non-empty) when endpointPublicAccess" in message


def test_public_access_cidrs_on_a_private_endpoint_are_refused() -> None:
    raw = {**raw_for("prod"), "publicAccessCidrs": json.dumps(["203.0.113.0/24"])}
    assert "mlplatform:publicAccessCidrs: only allowed when endpointPublicAccess" in rejection(raw)


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
    groups = json.loads(raw_for("dev")["nodeGroups"]) | {"tpu": {"minSize": 1}}
    message = rejection({**raw_for("dev"), "nodeGroups": json.dumps(groups)})
    assert "mlplatform:nodeGroups.tpu: unknown key" in message
    assert "allowed: gpu, spot, system" in message


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
    groups = json.loads(raw["nodeGroups"])
    del groups["spot"]["maxSize"]
    raw["nodeGroups"] = json.dumps(groups)
    message = rejection(raw)
    assert "mlplatform:kubernetesVersion: missing required key" in message
    assert "mlplatform:nodeGroups.spot.maxSize: missing required key" in message


def test_every_problem_is_collected_into_one_error() -> None:
    raw = with_node_group(raw_for("dev"), "gpu", minSize=3, maxSize=1)
    raw |= {"azCount": "9", "natStrategy": "cheap", "vpcCidr": "nope"}
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    keys = [p.split(": ")[0] for p in info.value.problems]
    assert sorted(keys) == sorted(
        [
            "mlplatform:azCount",
            "mlplatform:natStrategy",
            "mlplatform:vpcCidr",
            "mlplatform:nodeGroups.gpu.maxSize",
        ]
    )
    assert isinstance(info.value, ValueError)


def test_addon_versions_are_pinned_and_kube_proxy_follows_the_cluster() -> None:
    raw = raw_for("dev")
    versions = {"kube-proxy": "v1.32.6-eksbuild.8", "coredns": "latest"}
    raw["addonVersions"] = json.dumps(json.loads(raw["addonVersions"]) | versions)
    message = rejection(raw)
    assert "mlplatform:addonVersions.coredns: 'latest' must be pinned" in message
    assert "mlplatform:addonVersions.kube-proxy: 'v1.32.6-eksbuild.8' does not match" in message


def test_secret_values_never_appear_in_messages() -> None:
    raw = {**raw_for("dev"), "vpcCidr": "s3cr3t-value", "azCount": "s3cr3t-count"}
    raw["publicAccessCidrs"] = json.dumps(["s3cr3t-cidr"])
    message = rejection(raw, secret=("vpcCidr", "azCount", "publicAccessCidrs"))
    for key in ("vpcCidr", "azCount", "publicAccessCidrs"):
        assert f"mlplatform:{key}: " in message
    assert "s3cr3t" not in message


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
    assert settings.gpu.instance_types == ("g5.2xlarge", "g6.2xlarge")


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
        assert spec["type"] == KEYS[key], key
        assert spec["description"].strip(), key
        assert "default" in spec, key
        if spec["type"] == "array":
            assert spec["items"] == {"type": "string"}, key
    # The defaults alone make a valid (secure) stack: private endpoint, NAT per zone.
    empty = tmp_path / "Pulumi.empty.yaml"
    empty.write_text("config: {}\n")
    defaults = load_stack_config(None, empty, root=ROOT).values
    settings = parse_settings({k.split(":", 1)[1]: v for k, v in defaults.items()})
    assert settings.endpoint_public_access is False
    assert settings.nat_strategy == "per_az"


def test_stack_files_set_the_region() -> None:
    for stack in ("dev", "prod"):
        document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        assert document["config"]["aws:region"], stack


def test_a_config_error_is_reported_by_pulumi_without_a_stack_trace() -> None:
    # The language host prints a RunError's message alone instead of a traceback.
    error = ConfigError(["mlplatform:azCount: 9 is outside 2..6"])
    assert isinstance(error, pulumi.RunError) and isinstance(error, ValueError)
    assert str(error) == "invalid stack configuration: mlplatform:azCount: 9 is outside 2..6"
