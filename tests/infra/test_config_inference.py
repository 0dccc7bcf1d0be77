"""``mlplatform:inference``: the services read into settings, and every bad value named by
its key in one line (the promotion tool writes these keys: their names are a contract)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, parse_settings
from infra.offline.stack_file import load_stack_config
from tests.offline_support import ROOT, plan_subprocess

KEY = "mlplatform:inference.services.anomaly"


def raw_for(stack: str) -> dict[str, Any]:
    config = load_stack_config(stack, root=ROOT)
    prefix = "mlplatform:"
    return {k[len(prefix) :]: v for k, v in config.values.items() if k.startswith(prefix)}


def edited(stack: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    raw = raw_for(stack)
    inference = json.loads(raw["inference"])
    edit(inference)
    return {**raw, "inference": json.dumps(inference)}


def service(stack: str, **fields: Any) -> dict[str, Any]:
    def edit(inference: dict[str, Any]) -> None:
        entry = inference["services"]["anomaly"]
        for path, value in fields.items():
            *head, last = path.split("__")
            target = entry
            for part in head:
                target = target.setdefault(part, {})
            target[last] = value

    return edited(stack, edit)


def rejection(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_both_stacks_read_into_their_services() -> None:
    dev = parse_settings(raw_for("dev")).inference
    prod = parse_settings(raw_for("prod")).inference
    assert dev is not None and prod is not None
    assert dev.image == "build" and dev.allow_model_aliases is True
    assert prod.image.startswith("123456789012.dkr.ecr.") and prod.allow_model_aliases is False
    assert dev.required_tags == prod.required_tags == {"validation_status": "passed"}
    anomaly = prod.services["anomaly"]
    assert (anomaly.placement, anomaly.resources.gpu) == ("gpu", 1)
    assert (anomaly.min_replicas, anomaly.max_replicas) == (2, 6)
    assert anomaly.rollout.strategy == "blue-green" and anomaly.rollout.active == "blue"
    assert anomaly.batching.max_batch_size == 128
    assert dev.services["anomaly"].placement == "spot"


def test_a_canary_weight_out_of_range_names_its_key() -> None:
    message = rejection(service("prod", rollout__canaryWeight=140))
    assert f"{KEY}.rollout.canaryWeight: 140 is outside 0..100" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"rollout__mirrorPercent": -1}, f"{KEY}.rollout.mirrorPercent: -1 is outside 0..100"),
        ({"rollout__strategy": "linear"}, f"{KEY}.rollout.strategy: 'linear' must be one of"),
        ({"rollout__active": "red"}, f"{KEY}.rollout.active: 'red' must be blue or green"),
        ({"placement": "tpu"}, f"{KEY}.placement: 'tpu' must be one of gpu, spot, system"),
        ({"replicas__min": 3, "replicas__max": 2}, f"{KEY}.replicas.max: 2 is outside 3..1000"),
        ({"batching__maxBatchSize": 0}, f"{KEY}.batching.maxBatchSize: 0 is outside 1..4096"),
        ({"batching__workers": "two"}, f"{KEY}.batching.workers: 'two' is not an integer"),
        ({"resources__memory": "lots"}, f"{KEY}.resources.memory: 'lots' must be a quantity"),
        ({"resources__gpu": 0}, f"{KEY}.resources.gpu: 0 must be at least 1 with placement gpu"),
        ({"auth__issuer": "http://x"}, f"{KEY}.auth.issuer: 'http://x' must be an https:// URL"),
        ({"auth__audiences": []}, f"{KEY}.auth.audiences: [] must list at least one audience"),
        ({"rateLimit__burst": 10}, f"{KEY}.rateLimit.burst: 10 is outside 200..10000000"),
        (
            {"rollout__canaryWieght": 5},
            f"{KEY}.rollout.canaryWieght: unknown key (did you mean 'canaryWeight'?)",
        ),
        (
            {"rollout__green__image": "repo:latest"},
            f"{KEY}.rollout.green.image: 'repo:latest' must be a repository@sha256:<64 hex> digest",
        ),
    ],
)
def test_bad_service_values_name_their_key(fields: dict[str, Any], expected: str) -> None:
    assert expected in rejection(service("prod", **fields))


def test_prod_refuses_aliases_and_dev_allows_them() -> None:
    alias = {"anomaly-detector": "models:/anomaly-detector@champion"}
    message = rejection(service("prod", models=alias))
    assert (
        f"{KEY}.models.anomaly-detector: 'models:/anomaly-detector@champion' is an alias" in message
    )
    green = rejection(service("prod", rollout__green__models=alias))
    assert f"{KEY}.rollout.green.models.anomaly-detector:" in green
    assert parse_settings(service("dev", models=alias)).inference is not None


def test_the_image_is_a_digest_or_build() -> None:
    def tag(inference: dict[str, Any]) -> None:
        inference["image"] = "mlplatform-serving:1.0"

    assert "mlplatform:inference.image: 'mlplatform-serving:1.0' must be repository@sha256" in (
        rejection(edited("prod", tag))
    )


def test_a_model_routes_to_one_service_only() -> None:
    def twice(inference: dict[str, Any]) -> None:
        inference["services"]["other"] = dict(inference["services"]["anomaly"])

    message = rejection(edited("prod", twice))
    assert (
        "mlplatform:inference.services.other.models.anomaly-detector: is also served by" in message
    )


def test_a_placement_needs_a_pool_of_its_preset() -> None:
    raw = raw_for("prod")
    groups = json.loads(raw["nodeGroups"])
    del groups["gpu"]
    message = rejection({**raw, "nodeGroups": json.dumps(groups)})
    assert f"{KEY}.placement: 'gpu' needs a pool with preset 'gpu' in nodeGroups" in message


def test_required_tags_are_a_map_of_strings() -> None:
    def bad(inference: dict[str, Any]) -> None:
        inference["promotion"] = {"requiredTags": {"validation_status": True}}

    assert "mlplatform:inference.promotion.requiredTags:" in rejection(edited("prod", bad))


def test_auth_is_required() -> None:
    def drop(inference: dict[str, Any]) -> None:
        del inference["services"]["anomaly"]["auth"]

    assert f"{KEY}.auth: missing required key" in rejection(edited("prod", drop))


def test_a_bad_value_exits_2_with_one_line(tmp_path: Path) -> None:
    text = (ROOT / "Pulumi.prod.yaml").read_text().replace("canaryWeight: 0", "canaryWeight: 140")
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    result = plan_subprocess("--config-file", str(path))
    assert result.returncode == 2, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{KEY}.rollout.canaryWeight: 140 is outside 0..100" in lines[0]
