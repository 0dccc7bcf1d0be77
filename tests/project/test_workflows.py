"""The CI workflows: pinned actions, prod deployed only from main on a runner that can
reach its private endpoint, credentials that outlive the job, one update per stack."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
_USES = re.compile(r"^\s*-?\s*uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
_PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
_VERSION_COMMENT = re.compile(r"^\s*# v\d+\.\d+\.\d+$")


def _load(name: str) -> dict[str, Any]:
    return YAML(typ="safe").load((WORKFLOWS / name).read_text())


def _jobs(name: str) -> dict[str, Any]:
    return _load(name)["jobs"]


def _steps_using(workflow: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [
        step
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith(f"{action}@")
    ]


def test_workflows_and_dependabot_match_their_schemas() -> None:
    for schema, files in (
        ("vendor.github-workflows", sorted(WORKFLOWS.glob("*.yml"))),
        ("vendor.dependabot", [ROOT / ".github" / "dependabot.yml"]),
    ):
        result = subprocess.run(
            [str(BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_to_a_commit_with_its_version_beside_it() -> None:
    seen = 0
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = _USES.match(line)
            if not match or match["ref"].startswith("./"):
                continue
            seen += 1
            where = f"{path.name}:{number}"
            assert _PINNED.match(match["ref"]), f"{where}: {match['ref']} is not a commit SHA"
            assert _VERSION_COMMENT.match(match["comment"]), f"{where}: no '# vX.Y.Z' comment"
    assert seen >= 10


def test_dependabot_updates_the_pinned_actions() -> None:
    config = YAML(typ="safe").load((ROOT / ".github" / "dependabot.yml").read_text())
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert {"github-actions", "pip"} <= ecosystems


def test_the_pulumi_cli_matches_the_pinned_sdk() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    sdk = next(
        dep.split("==", 1)[1]
        for dep in project["project"]["dependencies"]
        if dep.startswith("pulumi==")
    )
    installs = [
        step
        for step in _steps_using(_load("pulumi.yml"), "pulumi/actions")
        if "command" not in step.get("with", {})
    ]
    assert [step["with"]["pulumi-version"] for step in installs] == [sdk]


def test_the_aws_session_outlives_the_job() -> None:
    workflow = _load("pulumi.yml")
    (job,) = workflow["jobs"].values()
    (credentials,) = _steps_using(workflow, "aws-actions/configure-aws-credentials")
    assert int(credentials["with"]["role-duration-seconds"]) > job["timeout-minutes"] * 60


def test_prod_is_deployed_only_from_main_by_hand_on_the_runner_inside_the_vpc() -> None:
    prod = _jobs("deploy.yml")["prod"]
    condition = " ".join(prod["if"].split())
    assert "github.ref == 'refs/heads/main'" in condition
    assert "github.event_name == 'workflow_dispatch'" in condition
    assert "vars.PROD_RUNNER != ''" in condition
    assert prod["uses"] == "./.github/workflows/pulumi.yml"
    assert prod["with"]["runner"] == "${{ vars.PROD_RUNNER }}"
    assert prod["with"]["environment"] == "prod"
    assert prod["with"]["command"] == "up"
    assert prod["needs"] == "gate"


def test_dev_deploys_on_push_to_main_from_a_hosted_runner() -> None:
    workflow = _load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    dev = workflow["jobs"]["dev"]
    assert "github.event_name == 'push'" in dev["if"]
    assert dev["with"] | {"role-arn": None} == {
        "stack": "dev",
        "command": "up",
        "runner": "ubuntu-24.04",
        "environment": "dev",
        "role-arn": None,
    }


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_two_updates_of_one_stack_never_overlap(stack: str) -> None:
    concurrency = _jobs("deploy.yml")[stack]["concurrency"]
    assert concurrency == {"group": f"deploy-{stack}", "cancel-in-progress": False}


def test_previews_comment_per_stack_with_the_policy_pack_and_prod_needs_the_vpc_runner() -> None:
    jobs = _jobs("pr.yml")
    assert jobs["preview-dev"]["with"]["runner"] == "ubuntu-24.04"
    assert jobs["preview-prod"]["with"]["runner"] == "${{ vars.PROD_RUNNER }}"
    assert "vars.PROD_RUNNER != ''" in jobs["preview-prod"]["if"]
    for name in ("preview-dev", "preview-prod"):
        assert jobs[name]["with"]["command"] == "preview"
        assert jobs[name]["permissions"]["pull-requests"] == "write"
    (run,) = [
        step
        for step in _steps_using(_load("pulumi.yml"), "pulumi/actions")
        if "command" in step.get("with", {})
    ]
    assert run["with"]["policyPacks"] == "policy"
    assert "inputs.command == 'preview'" in run["with"]["comment-on-pr"]


def test_deploys_grant_no_pull_request_write() -> None:
    for name in ("dev", "prod"):
        assert "pull-requests" not in _jobs("deploy.yml")[name]["permissions"]
    (job,) = _jobs("pulumi.yml").values()
    assert "permissions" not in job  # the caller's grant is the whole grant


def test_each_update_reads_the_running_kubernetes_version_first() -> None:
    (job,) = _jobs("pulumi.yml").values()
    names = [step.get("name", step.get("uses", "")) for step in job["steps"]]
    version_step = names.index("Running Kubernetes version")
    assert "MLPLATFORM_DEPLOYED_KUBERNETES_VERSION" in job["steps"][version_step]["run"]
    run_step = max(i for i, step in enumerate(job["steps"]) if "command" in step.get("with", {}))
    assert version_step < run_step


def test_promotion_opens_a_pull_request_whose_body_is_the_tools_summary() -> None:
    (job,) = _jobs("promote.yml").values()
    assert job["runs-on"] == "${{ vars.PROD_RUNNER }}"  # the registry is inside the VPC
    steps = {step.get("name"): step for step in job["steps"]}
    run = steps["Promote dev to prod in the stack file"]["run"]
    assert "python -m infra.promote" in run and '--summary "$RUNNER_TEMP/summary.md"' in run
    # 3 (nothing to do) is success without a pull request; 1 and 2 fail the job.
    assert '3) echo "changed=false"' in run and '*) exit "$status"' in run
    opened = steps["Open the pull request"]
    assert opened["if"] == "steps.promote.outputs.changed == 'true'"
    assert '--body-file "$RUNNER_TEMP/summary.md"' in opened["run"]
    assert job["env"]["GH_TOKEN"].startswith("${{ secrets.PROMOTE_TOKEN")
