"""What the drill registers, and the registry state it compares before and after.

Two models with known artifacts: ``anomaly-detector`` (two versions of the demo's
IsolationForest; ``champion`` on version 2, ``challenger`` on version 1) and
``capacity-forecaster`` (one linear model, ``champion``). Each run also logs a small
text artifact whose content is fixed. The snapshot holds every version's identity and
tags, every alias, and the SHA-256 of every artifact file as the tracking server
serves it (proxied from S3).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from serving.demo import FEATURES, SKOPS_TRUSTED_TYPES, synthetic_metrics

ANOMALY = "anomaly-detector"
FORECASTER = "capacity-forecaster"
EXPERIMENT = "restore-drill"
NOTES = "notes/training.txt"
# A normal row and an obvious anomaly: the restored champion must answer [1, -1].
PROBE_ROWS = [[41.0, 52.5, 120.0], [99.0, 3.0, 4200.0]]
PROBE_ANSWER = [1, -1]


@dataclass(frozen=True)
class Snapshot:
    """The registry as the tracking server reports it."""

    versions: dict[str, dict[str, object]]
    """``name/version`` -> run id, source, status and tags."""
    aliases: dict[str, str]
    """``name@alias`` -> version."""
    checksums: dict[str, str]
    """``name/version/<file>`` and ``run/<run id>/<file>`` -> SHA-256 hex."""


def _requirements(*dists: str) -> list[str]:
    # Pinned from what is installed: inferring them loads the model in a subprocess.
    return [f"{dist}=={version(dist)}" for dist in dists]


def register(tracking_uri: str) -> None:
    """Register the drill's models through the tracking server at ``tracking_uri`` (the
    client's credentials come from ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``)."""
    import mlflow
    import mlflow.sklearn as mlflow_sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LinearRegression

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment_id = client.create_experiment(EXPERIMENT)
    data = synthetic_metrics(500)
    example = data.head(2)
    forests = [IsolationForest(n_estimators=n, random_state=42).fit(data) for n in (10, 20)]
    forecaster = LinearRegression().fit(data[list(FEATURES[:2])], data[FEATURES[2]])
    logged: list[tuple[str, Any, Any, dict[str, Any]]] = [
        (ANOMALY, forest, example, {"skops_trusted_types": SKOPS_TRUSTED_TYPES})
        for forest in forests
    ]
    logged.append((FORECASTER, forecaster, example[list(FEATURES[:2])], {}))
    versions: dict[str, list[str]] = {}
    for index, (name, model, inputs, extra) in enumerate(logged, start=1):
        with mlflow.start_run(experiment_id=experiment_id):
            mlflow.log_text(f"drill model {name}, run {index}\n", NOTES)
            info = mlflow_sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(inputs, model.predict(inputs)),
                input_example=inputs,
                registered_model_name=name,
                pip_requirements=_requirements("mlflow", "scikit-learn", "skops", "numpy"),
                **extra,
            )
        versions.setdefault(name, []).append(str(info.registered_model_version))
        client.set_model_version_tag(name, versions[name][-1], "validation", "passed")
    client.set_registered_model_alias(ANOMALY, "champion", versions[ANOMALY][1])
    client.set_registered_model_alias(ANOMALY, "challenger", versions[ANOMALY][0])
    client.set_registered_model_alias(FORECASTER, "champion", versions[FORECASTER][0])


def _file_checksums(root: Path, label: str) -> dict[str, str]:
    return {
        f"{label}/{path.relative_to(root)}": hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def snapshot(tracking_uri: str) -> Snapshot:
    """Read every registered model, version, alias and artifact from ``tracking_uri``."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    versions: dict[str, dict[str, object]] = {}
    aliases: dict[str, str] = {}
    checksums: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="drill-artifacts-") as tmp:
        for model in client.search_registered_models():
            for alias, number in sorted(model.aliases.items()):
                aliases[f"{model.name}@{alias}"] = str(number)
            for mv in client.search_model_versions(f"name='{model.name}'"):
                key = f"{model.name}/{mv.version}"
                versions[key] = {
                    "run_id": mv.run_id,
                    "source": mv.source,
                    "status": mv.status,
                    "tags": dict(sorted(mv.tags.items())),
                }
                target = Path(tmp) / key
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{key}", dst_path=str(target), tracking_uri=tracking_uri
                )
                checksums |= _file_checksums(target, key)
                run_dir = Path(tmp) / "run" / str(mv.run_id)
                mlflow.artifacts.download_artifacts(
                    run_id=mv.run_id, dst_path=str(run_dir), tracking_uri=tracking_uri
                )
                checksums |= _file_checksums(run_dir, f"run/{mv.run_id}")
    return Snapshot(versions=versions, aliases=aliases, checksums=checksums)


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """One line per model version, alias or artifact that differs (empty: identical)."""
    lines: list[str] = []
    for label, old, new in (
        ("model version", before.versions, after.versions),
        ("alias", before.aliases, after.aliases),
        ("artifact", before.checksums, after.checksums),
    ):
        for key in sorted(old.keys() | new.keys()):
            if key not in new:
                lines.append(f"{label} {key}: missing after the restore")
            elif key not in old:
                lines.append(f"{label} {key}: not there before the backup")
            elif old[key] != new[key]:
                lines.append(f"{label} {key}: {old[key]!r} before, {new[key]!r} after")
    return lines
