"""The project's own wiring: CI workflows, the CI entry point and the README agree."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_ci_runs_the_readme_test_command() -> None:
    readme_head = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme_head
    assert "make plan" in readme_head
    assert "make test" in ci


def _pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if "==" in line and not line.startswith("--"):
            name, version = line.split("==", 1)
            pins[name.split("[", 1)[0].strip().lower()] = version.strip()
    return pins


def test_image_lock_holds_every_service_pin_with_hashes() -> None:
    wanted = _pins((ROOT / "serving" / "requirements.txt").read_text())
    lock_text = (ROOT / "serving" / "requirements.lock").read_text()
    locked = _pins(lock_text)
    assert wanted, "serving/requirements.txt pins nothing"
    for name, version in wanted.items():
        assert locked.get(name) == version, f"{name}: lock has {locked.get(name)}, want {version}"
    # Every locked package carries at least one hash, so pip can run with --require-hashes.
    entries = lock_text.split("\n", 2)[2].split("==")[1:]
    assert len(entries) == len(locked)
    assert all("--hash=sha256:" in entry for entry in entries)
    dockerfile = (ROOT / "serving" / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile


def test_image_lock_continues_every_pin_onto_its_hashes() -> None:
    """pip reads a pin and its hashes as one logical line: a pin without its trailing
    backslash leaves the hashes as lines of their own, which pip refuses."""
    lines = (ROOT / "serving" / "requirements.lock").read_text().splitlines()
    for number, (line, following) in enumerate(itertools.pairwise(lines), 1):
        if following.lstrip().startswith("--hash="):
            assert line.endswith(" \\"), f"requirements.lock:{number}: {line!r} does not continue"
