"""The restore drill, for real: PostgreSQL, moto's S3, the MLflow server and the inference
service on 127.0.0.1 (no network), run as an operator runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.drill.postgres import PostgresMissing, bin_dir
from infra.drill.registry import Snapshot, differences

ROOT = Path(__file__).resolve().parents[2]


def _postgres() -> Path:
    try:
        return bin_dir()
    except PostgresMissing as missing:
        pytest.fail(str(missing))


@pytest.mark.integration
@pytest.mark.timeout(1800)  # three MLflow server starts and a model load on two shared cores
def test_drill_restores_every_version_alias_and_artifact(tmp_path: Path) -> None:
    _postgres()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_"))}
    result = subprocess.run(
        [sys.executable, "-m", "infra.restore_drill", "--workdir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    steps = re.findall(r"^\[drill\] (\d)/6 ", out, re.MULTILINE)
    assert steps == ["1", "2", "3", "4", "5", "6"]
    assert "an unauthenticated registry call is answered 401" in out
    # The cluster Job's script made the read-only user, and a second run only set its
    # password again; that user may read (step 6 serves with it) but not move an alias.
    made = re.findall(r"^\[drill\]     ensure-user: user 'serving' at \S+: (.+)$", out, re.M)
    assert made == ["created", "existed: password set"], out
    assert "the read-only user moving an alias is answered 403" in out
    assert "database dropped; 0 artifact objects left" in out
    verified = re.findall(r"^\[drill\]     ok sha256:[0-9a-f]{64} (\S+)$", out, re.MULTILINE)
    # Three versions' model files and each run's fixed text artifact, all compared.
    for version in ("anomaly-detector/1", "anomaly-detector/2", "capacity-forecaster/1"):
        assert f"{version}/MLmodel" in verified and f"{version}/model.skops" in verified
    assert sum(v.endswith("notes/training.txt") for v in verified) == 3
    assert "MISMATCH" not in out
    assert "3 model versions and 3 aliases compared" in out
    assert "V2 infer answered [1, -1] (expected [1, -1])" in out
    # PostgreSQL was stopped cleanly by the drill.
    assert "database system is shut down" in (tmp_path / "postgres.log").read_text()


def test_missing_postgres_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("infra.drill.postgres._BIN_GLOB", "/nonexistent/*/bin")
    with pytest.raises(PostgresMissing, match="install Debian's postgresql package"):
        bin_dir()


def test_differences_name_each_changed_version_alias_and_artifact() -> None:
    before = Snapshot(
        versions={"m/1": {"status": "READY"}},
        aliases={"m@champion": "1"},
        checksums={"m/1/MLmodel": "aa", "m/1/model.skops": "bb"},
    )
    after = Snapshot(
        versions={"m/1": {"status": "FAILED"}},
        aliases={},
        checksums={"m/1/MLmodel": "aa", "m/1/model.skops": "cc", "m/1/extra": "dd"},
    )
    assert differences(before, before) == []
    assert differences(before, after) == [
        "model version m/1: {'status': 'READY'} before, {'status': 'FAILED'} after",
        "alias m@champion: missing after the restore",
        "artifact m/1/extra: not there before the backup",
        "artifact m/1/model.skops: 'bb' before, 'cc' after",
    ]
