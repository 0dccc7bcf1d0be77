"""The project's own wiring: CI workflows, the CI entry point and the README agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_workflows_match_the_github_schema() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows, "no workflow files found"
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
        + [str(w) for w in workflows],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command() -> None:
    readme_head = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme_head
    assert "make plan" in readme_head
    assert "make test" in ci
