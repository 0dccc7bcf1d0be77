"""Helpers shared by the offline-engine and plan tests: the checkout, the plan command,
reading its JSON document, and a program using every recorded resource option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
"""The checkout (holds ``Pulumi.yaml``)."""


def plan_subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m infra.plan ARGS`` from the checkout, without inherited PULUMI_* vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "infra.plan", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def of_type(document: dict[str, Any], type_token: str) -> list[dict[str, Any]]:
    """The resources of one type in a plan's JSON document, in registration order."""
    return [r for r in document["resources"] if r["type"] == type_token]


# --- programs -------------------------------------------------------------------------


def options_program() -> None:
    """A program using every recorded resource option: ``protect``, ``ignore_changes``,
    an explicit provider, ``depends_on``, an input dependency, and an inherited
    ``protect`` through a component."""
    import pulumi
    import pulumi_aws as aws

    first = aws.s3.Bucket("first")
    east = aws.Provider("east", region="us-east-1")
    aws.s3.Bucket(
        "kept",
        tags={"team": "ml"},
        opts=pulumi.ResourceOptions(
            protect=True, ignore_changes=["tags"], provider=east, depends_on=[first]
        ),
    )
    aws.s3.BucketPolicy("policy", bucket=first.bucket, policy="{}")
    group = pulumi.ComponentResource(
        "mlplatform:test:Group", "group", None, pulumi.ResourceOptions(protect=True)
    )
    aws.cloudwatch.LogGroup("group-log", opts=pulumi.ResourceOptions(parent=group))
