"""Fixtures shared by the infra tests: one offline plan of the dev stack per session."""

from __future__ import annotations

import pytest

from infra.offline.report import PlanResult, run_plan
from tests.offline_support import ROOT


@pytest.fixture(scope="session")
def dev_plan() -> PlanResult:
    """The dev stack planned offline with the real program (read it, do not change it)."""
    return run_plan("dev", root=ROOT)
