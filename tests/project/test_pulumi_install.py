"""`pulumi install` / `pulumi up` on a fresh clone installs the project the program imports."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_language_host_installs_the_project_with_its_pins(tmp_path: Path) -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    program_dir = ROOT / project["main"]
    # What the Python language host runs for toolchain pip: `python -m pip install -r
    # requirements.txt` in the program directory (offline here: a dry run, no index).
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--quiet",
            "--report",
            str(report),
            "-r",
            "requirements.txt",
        ],
        cwd=program_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (install,) = json.loads(report.read_text())["install"]
    assert install["metadata"]["name"] == "mlplatform"
    assert install["download_info"]["url"] == ROOT.as_uri()
    assert install["download_info"]["dir_info"] == {"editable": True}
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(pinned) <= set(install["metadata"]["requires_dist"])
