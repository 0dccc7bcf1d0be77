"""The stack-file reader: Pulumi.yaml defaults merged with a stack file, as the engine would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.offline.stack_file import (
    PlanInputError,
    find_root,
    known_stacks,
    load_stack_config,
    project_defaults,
)
from tests.offline_support import ROOT


def _project(tmp_path: Path, schema: str, stack: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(f"name: demo\nruntime: python\nconfig:\n{schema}")
    (tmp_path / "Pulumi.qa.yaml").write_text(f"config:\n{stack}")
    return tmp_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("config: [1, 2\n", "not valid YAML (line"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("config: 3\n", "'config' must be a mapping"),
        ("config:\n  a:b:c: 1\n", "must look like 'ns:name'"),
    ],
)
def test_malformed_stack_files_are_usage_errors(tmp_path: Path, text: str, expected: str) -> None:
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(text)
    with pytest.raises(PlanInputError, match=expected.replace("(", r"\(")):
        load_stack_config(None, stack_file, root=ROOT)


def test_an_unreadable_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "Pulumi.gone.yaml"
    with pytest.raises(PlanInputError, match=r"Pulumi\.gone\.yaml: cannot read"):
        load_stack_config(None, missing, root=ROOT)


def test_unknown_stack_names_the_allowed_ones() -> None:
    with pytest.raises(PlanInputError, match=r"unknown stack 'staging'; allowed: dev, prod"):
        load_stack_config("staging", root=ROOT)
    assert known_stacks(ROOT) == ["dev", "prod"]


def test_stack_name_from_the_config_file_name(tmp_path: Path) -> None:
    named = tmp_path / "Pulumi.qa.yaml"
    named.write_text("config:\n  mlplatform:azCount: 4\n")
    assert load_stack_config(None, named, root=ROOT).stack == "qa"
    other = tmp_path / "settings.yaml"
    other.write_text("config: {}\n")
    assert load_stack_config(None, other, root=ROOT).stack == "dev"
    assert load_stack_config("prod", other, root=ROOT).stack == "prod"


def test_the_root_is_found_from_a_subdirectory_or_the_checkout(tmp_path: Path) -> None:
    assert find_root(ROOT / "infra" / "offline") == ROOT
    assert find_root(tmp_path) == ROOT  # no Pulumi.yaml above tmp: the checkout's


def test_defaults_fill_structured_objects_by_path(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.qa.yaml"
    stack_file.write_text("config:\n  mlplatform:addonVersions:\n    coredns: v9.9.9-eksbuild.1\n")
    values = load_stack_config(None, stack_file, root=ROOT).values
    _, defaults = project_defaults(ROOT)
    versions = json.loads(values["mlplatform:addonVersions"])
    assert versions["coredns"] == "v9.9.9-eksbuild.1"  # the stack's leaf wins
    assert versions["kube-proxy"] == defaults["mlplatform:addonVersions.kube-proxy"]
    assert values["mlplatform:azCount"] == str(defaults["mlplatform:azCount"])
    assert json.loads(values["mlplatform:publicAccessCidrs"]) == []


def test_values_are_encoded_as_the_engine_passes_them(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        "  flag: {type: boolean, default: false}\n  count: {type: integer, default: 3}\n",
        "  demo:flag: true\n  aws:region: eu-west-1\n",
    )
    values = load_stack_config("qa", root=root).values
    assert values == {"demo:flag": "true", "demo:count": "3", "aws:region": "eu-west-1"}
    assert project_defaults(root) == ("demo", {"demo:flag": False, "demo:count": 3})


OBJECT_DEFAULT = "  nodeGroups:\n    default:\n      system: {preset: system}\n"
DOTTED_DEFAULT = "  nodeGroups.system.minSize:\n    default: 2\n"


def _node_groups(root: Path) -> dict:
    return json.loads(load_stack_config("qa", root=root).values["demo:nodeGroups"])


def test_an_object_default_applies_when_the_stack_sets_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path, OBJECT_DEFAULT, "  aws:region: us-west-2\n")
    assert _node_groups(root) == {"system": {"preset": "system"}}


def test_a_stack_value_replaces_an_object_default_wholly(tmp_path: Path) -> None:
    root = _project(tmp_path, OBJECT_DEFAULT, "  demo:nodeGroups:\n    gpu: {preset: gpu}\n")
    # No 'system' pool merged in from the default: the stack's map is the map.
    assert _node_groups(root) == {"gpu": {"preset": "gpu"}}


@pytest.mark.parametrize(
    "schema", [OBJECT_DEFAULT + DOTTED_DEFAULT, DOTTED_DEFAULT + OBJECT_DEFAULT]
)
def test_dotted_defaults_fill_the_object_default_in_either_order(
    tmp_path: Path, schema: str
) -> None:
    root = _project(tmp_path, schema, "  aws:region: us-west-2\n")
    assert _node_groups(root) == {"system": {"preset": "system", "minSize": 2}}
    # Filling it did not change the schema's own object.
    assert project_defaults(root)[1]["demo:nodeGroups"] == {"system": {"preset": "system"}}


def test_dotted_defaults_fill_a_stack_object_leaf_by_leaf(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        OBJECT_DEFAULT + DOTTED_DEFAULT,
        "  demo:nodeGroups:\n    system: {minSize: 5}\n    gpu: {preset: gpu}\n",
    )
    assert _node_groups(root) == {"system": {"minSize": 5}, "gpu": {"preset": "gpu"}}


def test_secure_values_become_marked_secret_placeholders(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.qa.yaml"
    stack_file.write_text(
        "config:\n  mlplatform:alertToken:\n    secure: AAABAJciphertextQQ==\n"
        "  mlplatform:nested:\n    inner:\n      secure: AAAB==\n"
    )
    config = load_stack_config(None, stack_file, root=ROOT)
    assert config.values["mlplatform:alertToken"] == "[secret:mlplatform:alertToken]"
    assert json.loads(config.values["mlplatform:nested"]) == {"inner": "[secret:mlplatform:nested]"}
    assert config.secret_keys == ("mlplatform:alertToken", "mlplatform:nested")
