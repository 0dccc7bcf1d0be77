"""System binaries the tests run (Debian's prometheus package), found once, never skipped."""

from __future__ import annotations

import shutil

import pytest


def binary(name: str) -> str:
    """Return the path of ``name`` (``promtool``, ``prometheus``); fail the test with one
    clear line when it is missing (``make setup`` installs it)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's prometheus package (make setup does)")
    return path
