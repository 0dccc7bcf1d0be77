"""The demo: train a small anomaly detector, register it locally, and serve it.

``python -m serving.demo [--port 8080] [--no-serve] [--root DIR]`` needs nothing but
the installed package. It trains an IsolationForest on synthetic node metrics
(cpu, memory, network), logs it with a signature and an input example into a local
MLflow registry under ``.mlflow/`` (sqlite + local artifacts), points the alias
``champion`` at the new version, and serves ``models:/anomaly-detector@champion``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

MODEL_NAME = "anomaly-detector"
ALIAS = "champion"
FEATURES = ("cpu_util", "memory_util", "network_mbps")
#: Tree classes skops must be told to trust when MLflow logs a forest (no pickle opt-in).
SKOPS_TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


def _progress(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def synthetic_metrics(
    n_rows: int = 2000, anomaly_fraction: float = 0.02, seed: int = 7
) -> pd.DataFrame:
    """Return ``n_rows`` of synthetic node metrics with a few injected anomalies.

    Columns are ``FEATURES`` as float64: CPU and memory utilisation in percent,
    network throughput in Mbit/s. About ``anomaly_fraction`` of the rows are spikes
    far outside the normal operating range. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    cpu = np.clip(rng.normal(45.0, 12.0, n_rows), 0.0, 100.0)
    memory = np.clip(0.6 * cpu + rng.normal(25.0, 6.0, n_rows), 0.0, 100.0)
    network = np.clip(rng.gamma(4.0, 30.0, n_rows), 0.0, None)
    n_anomalies = max(1, int(n_rows * anomaly_fraction))
    idx = rng.choice(n_rows, size=n_anomalies, replace=False)
    cpu[idx] = rng.uniform(95.0, 100.0, n_anomalies)
    memory[idx] = rng.uniform(1.0, 8.0, n_anomalies)
    network[idx] = rng.uniform(2000.0, 5000.0, n_anomalies)
    return pd.DataFrame(
        {"cpu_util": cpu, "memory_util": memory, "network_mbps": network}, dtype="float64"
    )


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    # MLflow and alembic are chatty on first use of a sqlite store; the demo prints
    # its own progress lines instead.
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic", "alembic.runtime.migration")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{dist}=={version(dist)}" for dist in ("mlflow", "scikit-learn", "skops", "numpy")]


def tracking_uri_for(root: Path) -> str:
    """Return the sqlite tracking/registry URI for a demo registry under ``root``."""
    return f"sqlite:///{(root / 'mlflow.db').resolve()}"


def train_and_register(root: Path, n_estimators: int = 100) -> str:
    """Train the demo IsolationForest and register it under ``root``; return its model URI.

    ``root`` (created if missing) holds the registry (``mlflow.db``, sqlite) and the
    artifacts (``artifacts/``). The model is registered as ``anomaly-detector`` and the
    alias ``champion`` is moved to the new version, so re-running simply registers the
    next version. Points this process's MLflow client at the local registry
    (``mlflow.set_tracking_uri``) but leaves the environment alone. Returns
    ``"models:/anomaly-detector@champion"``. Raises whatever MLflow raises if
    ``root`` is not writable.
    """
    import mlflow
    import mlflow.sklearn as mlflow_sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.ensemble import IsolationForest

    from serving.drift import log_reference

    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri_for(root)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)

    data = synthetic_metrics()
    _progress(f"training IsolationForest ({n_estimators} trees) on {len(data)} rows")
    model = IsolationForest(n_estimators=n_estimators, random_state=42)
    model.fit(data)
    example = data.head(2)
    signature = infer_signature(example, model.predict(example))

    with _quiet_mlflow():
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.get_experiment_by_name(MODEL_NAME)
        if experiment is None:
            experiment_id = client.create_experiment(
                MODEL_NAME, artifact_location=(root / "artifacts").as_uri()
            )
        else:
            experiment_id = experiment.experiment_id
        _progress(f"logging the model to {uri}")
        with mlflow.start_run(experiment_id=experiment_id):
            # What drift is measured against, beside the model in its run.
            log_reference(data)
            info = mlflow_sklearn.log_model(
                model,
                name="model",
                signature=signature,
                input_example=example,
                registered_model_name=MODEL_NAME,
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                # Pinned from what is installed: MLflow's own inference of requirements
                # loads the model in a subprocess and costs seconds for no new information.
                pip_requirements=_pip_requirements(),
            )
        version = info.registered_model_version
        if version is None:  # pragma: no cover - registration is requested above
            raise RuntimeError(f"MLflow did not register {MODEL_NAME}")
        client.set_registered_model_alias(MODEL_NAME, ALIAS, str(version))
    _progress(f"registered {MODEL_NAME} version {version} as @{ALIAS}")
    return f"models:/{MODEL_NAME}@{ALIAS}"


def curl_lines(host: str, port: int) -> list[str]:
    """Return example curl commands for the V2 and MLflow endpoints of a demo server."""
    base = f"http://{host}:{port}"
    header = "-H 'Content-Type: application/json'"
    v2 = (
        '{"inputs":[{"name":"input","shape":[2,3],"datatype":"FP64",'
        '"data":[[41.0,52.5,120.0],[99.0,3.0,4200.0]]}]}'
    )
    split = (
        '{"dataframe_split":{"columns":["cpu_util","memory_util","network_mbps"],'
        '"data":[[41.0,52.5,120.0],[99.0,3.0,4200.0]]}}'
    )
    return [
        f"curl -s {base}/v2/models/{MODEL_NAME}/infer {header} -d '{v2}'",
        f"curl -s {base}/invocations {header} -d '{split}'",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the demo's flags, train and register, then serve unless ``--no-serve``.

    Returns the process exit status (0 on success; 2 for bad flags via argparse).
    """
    parser = argparse.ArgumentParser(prog="python -m serving.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--root", type=Path, default=Path(".mlflow"), help="registry directory (default .mlflow)"
    )
    parser.add_argument(
        "--n-estimators", type=int, default=100, help="trees in the forest (default 100)"
    )
    parser.add_argument("--no-serve", action="store_true", help="train and register, then exit")
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    if args.n_estimators < 1:
        parser.error(f"--n-estimators must be >= 1, got {args.n_estimators}")

    uri = train_and_register(args.root, n_estimators=args.n_estimators)
    lines = curl_lines(args.host, args.port)
    if args.no_serve:
        _progress(
            f"model ready at {uri}; serve it with: python -m serving --model {MODEL_NAME}={uri}"
        )
        return 0
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri_for(args.root)
    _progress(
        f"loading {uri}; it serves on http://{args.host}:{args.port} once the log says "
        "'serving'. Then try:"
    )
    for line in lines:
        print(line, flush=True)
    from serving.__main__ import main as serve

    return serve(["--model", f"{MODEL_NAME}={uri}", "--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    raise SystemExit(main())
