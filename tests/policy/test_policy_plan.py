"""The rules applied to the real program through the offline plan (``infra.plan``)."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi_aws as aws
import pytest
import yaml

from infra.offline.report import PlanResult, exit_status, run_plan
from infra.plan import main
from tests.offline_support import ROOT, plan_subprocess

CLUSTER_TYPE = "aws:eks/cluster:Cluster"


@pytest.fixture(scope="module", params=["dev", "prod"])
def planned(request: pytest.FixtureRequest) -> PlanResult:
    return run_plan(request.param)


def test_stack_has_no_mandatory_violation(planned: PlanResult) -> None:
    mandatory = [v for v in planned.violations if v.level == "mandatory"]
    assert mandatory == [], "\n".join(f"{v.policy} {v.urn}: {v.message}" for v in mandatory)
    assert exit_status(planned) == 0
    # The rules had something to judge: the stack builds the guarded resources.
    types = {r.type for r in planned.run.resources}
    assert {CLUSTER_TYPE, "aws:ec2/vpc:Vpc", "aws:kms/key:Key"} <= types


def test_public_endpoint_advisory_follows_the_stack_choice(planned: PlanResult) -> None:
    # dev opts in to a public endpoint limited to listed CIDRs; prod keeps it private.
    flagged = [v for v in planned.violations if v.policy == "eks-public-endpoint-restricted"]
    expected = 1 if planned.stack == "dev" else 0
    assert len(flagged) == expected
    assert all(CLUSTER_TYPE in v.urn and v.level == "advisory" for v in flagged)


def test_cli_json_for_prod_reports_no_mandatory_violation() -> None:
    done = plan_subprocess("--stack", "prod", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [v for v in document["violations"] if v["level"] == "mandatory"] == []
    assert any(r["type"] == CLUSTER_TYPE for r in document["resources"])


def test_api_endpoint_open_to_the_world_fails_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    assert stack["config"]["mlplatform:endpointPublicAccess"] is True
    stack["config"]["mlplatform:publicAccessCidrs"] = ["203.0.113.0/24", "0.0.0.0/0"]
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(yaml.safe_dump(stack))

    done = plan_subprocess("--config-file", str(stack_file))
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr
    [line] = [ln for ln in done.stdout.splitlines() if "[mandatory]" in ln]
    assert "eks-public-endpoint" in line and CLUSTER_TYPE in line

    assert main(["--config-file", str(stack_file), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    [violation] = [v for v in document["violations"] if v["level"] == "mandatory"]
    assert violation["policy"] == "eks-public-endpoint"
    assert CLUSTER_TYPE in violation["urn"] and "0.0.0.0/0" in violation["message"]


def test_unsafe_program_is_caught_by_name() -> None:
    def unsafe_program() -> None:
        aws.ec2.LaunchTemplate(
            "unsafe-nodes",
            metadata_options={"http_tokens": "optional"},
            block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {"encrypted": "true"}}],
        )

    result = run_plan("dev", program=unsafe_program)
    found = {(v.policy, v.level, v.urn.rsplit("::", 1)[-1]) for v in result.violations}
    assert found == {("ec2-imdsv2-required", "mandatory", "unsafe-nodes")}
    assert exit_status(result) == 1
