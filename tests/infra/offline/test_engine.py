"""The recording engine: what it records, how runs start clean and fail."""

from __future__ import annotations

import re

import pulumi
import pulumi_aws as aws
import pytest

from infra.offline import run_program
from tests.offline_support import options_program


class _Box(pulumi.ComponentResource):
    """A tiny component with a nested component, for parent-tracking tests."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlplatform:test:Box", name, None, opts)
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc", cidr_block="10.1.0.0/16", opts=pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs({})


def _program() -> None:
    outer = _Box("outer")
    _Box("inner", opts=pulumi.ResourceOptions(parent=outer))
    aws.s3.Bucket("loose")
    pulumi.export("vpc_id", outer.vpc.id)
    pulumi.export("token", pulumi.Output.secret("s3cr3t"))
    pulumi.export("setting", pulumi.Config("mlplatform").get("setting"))


def _run(**config: str):
    return run_program(
        _program,
        project="mlplatform",
        stack="dev",
        config={"aws:region": "us-west-2", **{f"mlplatform:{k}": v for k, v in config.items()}},
    )


def test_records_custom_and_component_resources_with_parents_from_the_request() -> None:
    run = _run()
    by_name = {r.name: r for r in run.resources}
    assert set(by_name) == {"outer", "outer-vpc", "inner", "inner-vpc", "loose"}
    assert by_name["outer"].custom is False and by_name["outer-vpc"].custom is True
    assert by_name["outer"].parent is None  # parented to the (unrecorded) root stack
    assert by_name["loose"].parent is None
    assert by_name["outer-vpc"].parent == by_name["outer"].urn
    assert by_name["inner"].parent == by_name["outer"].urn
    assert by_name["inner-vpc"].parent == by_name["inner"].urn
    assert [r.name for r in run.children_of(by_name["outer"].urn)] == ["outer-vpc", "inner"]
    assert [r.name for r in run.by_type("aws:ec2/vpc:Vpc")] == ["outer-vpc", "inner-vpc"]
    # Real-engine URN shape: the root stack type is not part of the type chain.
    assert by_name["outer"].urn == "urn:pulumi:dev::mlplatform::mlplatform:test:Box::outer"
    assert by_name["inner-vpc"].urn.endswith(
        "mlplatform:test:Box$mlplatform:test:Box$aws:ec2/vpc:Vpc::inner-vpc"
    )
    assert by_name["outer-vpc"].inputs == {"cidrBlock": "10.1.0.0/16"}


def test_outputs_keep_secretness_and_config_reaches_the_program() -> None:
    run = _run(setting="first")
    assert run.outputs["setting"] == "first"
    assert run.outputs["token"] == "s3cr3t"
    assert run.secret_outputs == {"token"}
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", run.outputs["vpc_id"])


def test_secret_inputs_are_named_and_unwrapped() -> None:
    def program() -> None:
        aws.ssm.Parameter("p", type="SecureString", value=pulumi.Output.secret("hush"))

    (parameter,) = run_program(program, project="p", stack="s", config={}).resources
    assert parameter.inputs["value"] == "hush"
    assert parameter.secret_inputs == frozenset({"value"})


def test_runs_start_clean_and_are_reproducible() -> None:
    first = _run(setting="a")
    second = _run(setting="b")
    assert second.outputs["setting"] == "b"
    assert len(second.resources) == len(first.resources) == 5
    assert [(r.urn, r.inputs, r.id) for r in first.resources] == [
        (r.urn, r.inputs, r.id) for r in second.resources
    ]
    assert [r.name for r in first.resources] == [
        "outer",
        "outer-vpc",
        "inner",
        "inner-vpc",
        "loose",
    ]


def test_program_errors_propagate_as_the_original_exception() -> None:
    def failing() -> None:
        _Box("half")
        raise ValueError("bad setting: azCount")

    with pytest.raises(ValueError, match="bad setting: azCount"):
        run_program(failing, project="mlplatform", stack="dev", config={})

    def failing_in_apply() -> None:
        box = _Box("later")
        pulumi.export("x", box.vpc.id.apply(lambda _: {}["missing"]))

    with pytest.raises(KeyError, match="missing"):
        run_program(failing_in_apply, project="mlplatform", stack="dev", config={})
    # The engine is usable again afterwards.
    assert len(_run().resources) == 5


def test_resources_created_inside_apply_are_reported() -> None:
    def program() -> None:
        vpc = aws.ec2.Vpc("v", cidr_block="10.0.0.0/16")
        vpc.id.apply(lambda i: aws.ec2.Subnet("bad", vpc_id=i, cidr_block="10.0.0.0/24"))

    run = run_program(program, project="mlplatform", stack="dev", config={})
    assert [u.rsplit("::", 1)[1] for u in run.created_in_callbacks] == ["bad"]
    assert _run().created_in_callbacks == []


def test_preview_mode_runs() -> None:
    run = run_program(_program, project="mlplatform", stack="dev", config={}, preview=True)
    assert len(run.resources) == 5


def test_captured_resources_carry_their_mocked_id_and_state() -> None:
    run = _run()
    by_name = {r.name: r for r in run.resources}
    vpc = by_name["outer-vpc"]
    assert vpc.id == run.outputs["vpc_id"]
    assert vpc.outputs["defaultSecurityGroupId"].startswith("sg-")
    assert vpc.outputs["cidrBlock"] == "10.1.0.0/16"
    assert by_name["outer"].id is None and by_name["outer"].outputs == {}


def test_resource_options_are_recorded_from_the_request() -> None:
    run = run_program(options_program, project="mlplatform", stack="dev", config={})
    by_name = {r.name: r for r in run.resources}
    kept, first, east = by_name["kept"], by_name["first"], by_name["east"]
    assert kept.protect is True and first.protect is False
    assert kept.ignore_changes == ("tags",)
    assert first.ignore_changes == ()
    # The provider reference as the engine receives it: <provider urn>::<provider id>.
    assert east.id is not None
    assert kept.provider == f"{east.urn}::{east.id}"
    assert first.provider is None
    assert first.urn in kept.dependencies
    # A dependency through an input (the bucket name) counts too.
    assert first.urn in by_name["policy"].dependencies
    assert by_name["group"].protect is True  # protect is inherited by children
    assert by_name["group-log"].protect is True


def test_aliases_are_recorded_as_sent() -> None:
    def program() -> None:
        box = _Box("renamed", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="old:Box")]))
        aws.s3.Bucket(
            "moved", opts=pulumi.ResourceOptions(parent=box, aliases=[pulumi.Alias(name="before")])
        )

    run = run_program(program, project="mlplatform", stack="dev", config={})
    by_name = {r.name: r for r in run.resources}
    assert any(a.get("spec", {}).get("type") == "old:Box" for a in by_name["renamed"].aliases)
    assert any(a.get("spec", {}).get("name") == "before" for a in by_name["moved"].aliases)
    assert by_name["renamed-vpc"].aliases == ()
