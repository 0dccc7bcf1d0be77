"""The service image: hadolint passes and its pins agree with pyproject's serving extra."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "serving" / "Dockerfile"


def _requirements(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==([^\s;]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[match[1].lower() + (match[2] or "")] = match[3]
    return pins


def test_requirements_match_pyproject_serving_extra() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["serving"]
    image = (ROOT / "serving" / "requirements.txt").read_text().splitlines()
    assert _requirements(image) == _requirements(extra)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_non_root_read_only_and_pinned() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM (\S+)", text, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base[1])
    user = re.search(r"^USER (\S+)", text, re.MULTILINE)
    assert user and re.fullmatch(r"\d+(:\d+)?", user[1]) and not user[1].startswith("0")
    for env in ("HOME=/tmp", "MPLCONFIGDIR=/tmp", "PYTHONDONTWRITEBYTECODE=1"):
        assert env in text
    assert "EXPOSE 8080" in text
    assert 'CMD ["python", "-m", "serving", "--host", "0.0.0.0"]' in text
