"""The MLflow server image: hadolint passes, it runs non-root, and its pins are the ones
the restore drill runs (pyproject.toml)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "mlflow_server" / "Dockerfile"


def _pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==(\S+)", line)
        if match:
            pins[match[1].lower()] = match[3]
    return pins


def test_the_image_pins_what_the_drill_runs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = _pins(extras["serving"] + extras["dev"])
    image = _pins((ROOT / "mlflow_server" / "requirements.txt").read_text().splitlines())
    assert set(image) == {"mlflow", "psycopg2-binary", "flask-wtf", "boto3"}
    from importlib.metadata import version

    for dist, pinned in image.items():
        assert declared.get(dist, version(dist)) == pinned, dist


def test_the_dockerfile_passes_hadolint_and_runs_non_root() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:\S+@sha256:[0-9a-f]{64}$", text, re.MULTILINE)
    user = re.search(r"^USER (\d+):\d+$", text, re.MULTILINE)
    assert user and user[1] != "0"
    assert "EXPOSE 5000" in text
