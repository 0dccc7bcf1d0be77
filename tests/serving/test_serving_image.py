"""The service image: hadolint passes, its pins agree with pyproject's serving extra, and it
carries the distribution's metadata so that it reports the real server version."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from serving.image_metadata import main as image_metadata_main
from serving.image_metadata import project_identity
from serving.protocol import server_metadata

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


def test_requirements_match_pyproject_serving_and_explain_extras() -> None:
    """The image serves with explanations: its pins are the two extras', exactly."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    image = (ROOT / "serving" / "requirements.txt").read_text().splitlines()
    assert _requirements(image) == _requirements([*extras["serving"], *extras["explain"]])


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


def test_image_installs_the_distribution_metadata_before_dropping_root() -> None:
    text = DOCKERFILE.read_text()
    assert "COPY pyproject.toml /tmp/pyproject.toml" in text
    run = text.index("RUN python -m serving.image_metadata /tmp/pyproject.toml")
    assert text.index("COPY serving/ /app/serving/") < run < text.index("USER ")
    assert text.index("WORKDIR /app") < run  # ``-m serving...`` imports the copied source


def test_metadata_written_for_the_image_reports_pyproject_version(tmp_path: Path) -> None:
    """What the image's build step writes is what ``GET /v2`` reads, and nothing else.

    ``python -S`` leaves this virtualenv's site-packages (and its editable install of
    the project) off ``sys.path``: only the written metadata can answer.
    """
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    site = tmp_path / "site-packages"
    build = subprocess.run(
        [sys.executable, "-m", "serving.image_metadata", str(ROOT / "pyproject.toml"), str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    probe = "import sys, importlib.metadata as m; sys.path.insert(0, sys.argv[1]); "
    probe += "print(m.version('mlplatform'))"
    found = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(site)],
        cwd=tmp_path,  # not the checkout, which may hold an egg-info of its own
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert found.stdout.strip() == version
    without = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(tmp_path / "empty")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "PackageNotFoundError" in without.stderr  # the "unknown" the image used to report
    assert server_metadata()["version"] == version


def test_image_metadata_names_a_bad_pyproject(tmp_path: Path) -> None:
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "mlplatform"\n')
    with pytest.raises(ValueError, match=r"needs string 'name' and 'version'"):
        project_identity(bad)
    assert image_metadata_main([str(bad), str(tmp_path)]) == 1
