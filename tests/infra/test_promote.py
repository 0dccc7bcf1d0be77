"""infra.promote against a real MLflow registry (sqlite + local artifacts) built here."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest

from infra import promote

MODEL = "anomaly-detector"
DIGEST_DEV = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlplatform-serving@sha256:" + "a" * 64
DIGEST_PROD = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlplatform-serving@sha256:" + "b" * 64


class Echo(mlflow.pyfunc.PythonModel):  # pyright: ignore[reportUntypedBaseClass]
    """A model that answers its first column (what it predicts does not matter here)."""

    def predict(self, context: object, model_input: pd.DataFrame) -> pd.Series:
        del context
        return model_input.iloc[:, 0]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Versions 1-5 of anomaly-detector, with aliases and tags:

    1 inputs (a, b)                         tagged validation_status=passed
    2 inputs (a, b)     alias champion      tagged validation_status=passed
    3 inputs (a, b, c)  alias wide          tagged validation_status=passed
    4 inputs (a, b)     alias fresh         untagged
    5 inputs (a, b)     alias broken        FAILED_REGISTRATION
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment(
        "promotion", artifact_location=(root / "artifacts").as_uri()
    )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    columns = {1: "ab", 2: "ab", 3: "abc", 4: "ab", 5: "ab"}
    for version, names in columns.items():
        frame = pd.DataFrame({name: [1.0, 2.0] for name in names})
        with mlflow.start_run(experiment_id=experiment):
            mlflow.log_metric("f1", 0.9 + version / 100)
            mlflow.pyfunc.log_model(
                name="model",
                python_model=Echo(),
                signature=infer_signature(frame, frame["a"]),
                registered_model_name=MODEL,
                pip_requirements=[],
            )
    for version in (1, 2, 3):
        client.set_model_version_tag(MODEL, str(version), "validation_status", "passed")
    for alias, version in (("champion", 2), ("wide", 3), ("fresh", 4), ("broken", 5)):
        client.set_registered_model_alias(MODEL, alias, str(version))
    with sqlite3.connect(root / "mlflow.db") as db:
        db.execute("UPDATE model_versions SET status = 'FAILED_REGISTRATION' WHERE version = 5")
    return uri


def _dev(pin: str = f"models:/{MODEL}@champion", image: str = DIGEST_DEV) -> str:
    return f"""\
config:
  mlplatform:clusterName: mlplatform-dev
  mlplatform:inference:
    image: {image}
    services:
      anomaly:
        models:
          {MODEL}: {pin}
        placement: spot
"""


PROD_ROLLING = f"""\
# prod: every change arrives through a reviewed pull request.
config:
  mlplatform:clusterName: mlplatform-prod   # the EKS cluster
  mlplatform:inference:
    image: "{DIGEST_PROD}"
    promotion:
      requiredTags:
        validation_status: passed   # set by the validation job
    services:
      anomaly:
        models:
          # the detector the alerting pipeline calls
          {MODEL}: 'models:/{MODEL}/1'
        placement: gpu
        replicas: {{min: 2, max: 10}}
"""

PROD_BLUE_GREEN = f"""\
config:
  mlplatform:inference:
    image: {DIGEST_PROD}
    promotion:
      requiredTags: {{validation_status: passed}}
    services:
      anomaly:
        models:
          {MODEL}: models:/{MODEL}/1
        rollout:
          strategy: blue-green
          active: blue   # flip to green after the preview
          blue:
            models:
              {MODEL}: models:/{MODEL}/1
          green:
            image: {DIGEST_PROD}
"""


@pytest.fixture
def project(tmp_path: Path, registry: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    (tmp_path / "Pulumi.dev.yaml").write_text(_dev())
    (tmp_path / "Pulumi.prod.yaml").write_text(PROD_ROLLING)
    return tmp_path


def _promote(project: Path, *extra: str) -> int:
    return promote.main(["--from", "dev", "--to", "prod", "--project-dir", str(project), *extra])


def test_promotes_the_resolved_alias_keeping_every_other_byte(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _promote(project) == promote.CHANGED
    after = (project / "Pulumi.prod.yaml").read_text()
    # The version the alias names now, and dev's image digest (rolling: stack-wide),
    # each keeping its quotes; every comment and other line as it was.
    assert after == PROD_ROLLING.replace(f"'models:/{MODEL}/1'", f"'models:/{MODEL}/2'").replace(
        f'"{DIGEST_PROD}"', f'"{DIGEST_DEV}"'
    )
    out = capsys.readouterr().out
    assert f"-          {MODEL}: 'models:/{MODEL}/1'" in out
    assert f"+          {MODEL}: 'models:/{MODEL}/2'" in out
    assert _promote(project) == promote.NOTHING


def test_an_image_that_is_built_is_not_promoted(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text(_dev(image="build"))
    assert _promote(project) == promote.CHANGED
    assert f'image: "{DIGEST_PROD}"' in (project / "Pulumi.prod.yaml").read_text()
    assert "image 'build' is not a pinned digest; not promoted" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("pin", "reason"),
    [
        (f"models:/{MODEL}@fresh", f"{MODEL} version 4 lacks tag validation_status=passed"),
        (f"models:/{MODEL}@broken", f"{MODEL} version 5 is FAILED_REGISTRATION, not READY"),
        (f"models:/{MODEL}@missing", f"{MODEL}: alias 'missing' does not exist"),
        (f"models:/{MODEL}/9", f"{MODEL} version 9 does not exist in the registry"),
        (f"models:/{MODEL}@wide", f"{MODEL} version 3 changes the inputs of version 1"),
    ],
)
def test_refusals_name_the_model_and_write_nothing(
    project: Path, pin: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text(_dev(pin))
    assert _promote(project) == promote.REFUSED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"refused: {reason}"), err
    assert (project / "Pulumi.prod.yaml").read_text() == PROD_ROLLING


def test_a_schema_change_passes_when_allowed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.dev.yaml").write_text(_dev(f"models:/{MODEL}@wide"))
    assert _promote(project) == promote.REFUSED
    assert "added ['c'], removed []" in capsys.readouterr().err
    assert _promote(project, "--allow-schema-change") == promote.CHANGED
    assert f"'models:/{MODEL}/3'" in (project / "Pulumi.prod.yaml").read_text()


def test_a_two_release_target_gets_the_next_release_not_the_active_one(project: Path) -> None:
    (project / "Pulumi.prod.yaml").write_text(PROD_BLUE_GREEN)
    assert _promote(project) == promote.CHANGED
    after = (project / "Pulumi.prod.yaml").read_text()
    # blue (active) is untouched; green gets the version and dev's digest.
    assert after == PROD_BLUE_GREEN.replace(
        f"          green:\n            image: {DIGEST_PROD}\n",
        f"          green:\n            image: {DIGEST_DEV}\n"
        f"            models:\n              {MODEL}: models:/{MODEL}/2\n",
    )
    assert _promote(project) == promote.NOTHING


def test_the_source_runs_its_active_release(project: Path) -> None:
    dev = _dev().replace(
        "        placement: spot\n",
        "        placement: spot\n        rollout:\n          strategy: canary\n"
        f"          active: green\n          green:\n            models:\n"
        f"              {MODEL}: models:/{MODEL}/1\n",
    )
    (project / "Pulumi.dev.yaml").write_text(dev)
    (project / "Pulumi.prod.yaml").write_text(PROD_ROLLING.replace("/1'", "/2'"))
    assert _promote(project) == promote.CHANGED
    assert f"'models:/{MODEL}/1'" in (project / "Pulumi.prod.yaml").read_text()


def test_dry_run_prints_the_diff_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _promote(project, "--dry-run", "--set-alias") == promote.CHANGED
    out = capsys.readouterr().out
    assert f"+          {MODEL}: 'models:/{MODEL}/2'" in out and "dry run" in out
    assert (project / "Pulumi.prod.yaml").read_text() == PROD_ROLLING


def test_set_alias_points_the_target_alias_and_counts_as_a_change(
    project: Path, registry: str
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registry, registry_uri=registry)
    assert _promote(project) == promote.CHANGED
    assert (
        _promote(project, "--set-alias") == promote.CHANGED
    )  # the file is done; the alias was not
    assert int(client.get_model_version_by_alias(MODEL, "prod").version) == 2
    assert _promote(project, "--set-alias") == promote.NOTHING


def test_summary_holds_the_diff_and_the_registry_facts(project: Path) -> None:
    summary = project / "summary.md"
    assert _promote(project, "--summary", str(summary)) == promote.CHANGED
    text = summary.read_text()
    assert f"| {MODEL} | 2 | `" in text and "validation_status=passed" in text and "f1=0.92" in text
    assert f"+          {MODEL}: 'models:/{MODEL}/2'" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no-uri", "MLFLOW_TRACKING_URI is not set"),
        (
            "bad-pin",
            f"Pulumi.dev.yaml inference.services.anomaly.models.{MODEL}: 'latest' is not",
        ),
        ("no-service", "Pulumi.prod.yaml inference.services.anomaly: no such service (other)"),
        ("no-file", "Pulumi.prod.yaml: cannot read"),
        ("no-inference", "Pulumi.prod.yaml: no mlplatform:inference object under config"),
    ],
)
def test_usage_and_stack_file_errors_exit_2_with_one_line(
    project: Path,
    change: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prod = project / "Pulumi.prod.yaml"
    if change == "no-uri":
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
    elif change == "bad-pin":
        (project / "Pulumi.dev.yaml").write_text(_dev("latest"))
    elif change == "no-service":
        prod.write_text(PROD_ROLLING.replace("      anomaly:\n", "      other:\n"))
    elif change == "no-file":
        prod.unlink()
    else:
        prod.write_text("config:\n  mlplatform:clusterName: x\n")
    before = prod.read_text() if prod.exists() else None
    assert _promote(project) == promote.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert (prod.read_text() if prod.exists() else None) == before


def test_unknown_model_filter_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _promote(project, "--model", "nope") == promote.USAGE
    assert "has no model nope" in capsys.readouterr().err


def test_the_repositorys_own_stack_files_promote_into_the_idle_release(
    tmp_path: Path,
    registry: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The committed Pulumi.dev.yaml and Pulumi.prod.yaml, with prod's idle release (green)
    put back to version 1: promotion pins 2 there and touches nothing else."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    root = Path(__file__).resolve().parents[2]
    prod_text = (root / "Pulumi.prod.yaml").read_text()
    green = f"          green:\n            models: {{{MODEL}: models:/{MODEL}/2}}\n"
    assert green in prod_text, "Pulumi.prod.yaml's green release no longer pins version 2"
    before = prod_text.replace(green, green.replace("/2}", "/1}"))
    (tmp_path / "Pulumi.dev.yaml").write_text((root / "Pulumi.dev.yaml").read_text())
    (tmp_path / "Pulumi.prod.yaml").write_text(before)
    assert _promote(tmp_path) == promote.CHANGED
    assert (tmp_path / "Pulumi.prod.yaml").read_text() == prod_text
    captured = capsys.readouterr()
    assert f"+            models: {{{MODEL}: models:/{MODEL}/2}}" in captured.out
    assert "image 'build' is not a pinned digest" in captured.err
    assert _promote(tmp_path) == promote.NOTHING
