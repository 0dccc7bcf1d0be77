"""Ensembles through real HTTP: three regression trees and three classification trees
registered in a real local MLflow registry (each version tagged with a validation
score), served on 127.0.0.1 with mean, median, weighted and vote ensembles over them.
Each ensemble's answer is compared with its members' answers combined by hand."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from serving.demo import SKOPS_TRUSTED_TYPES, synthetic_metrics
from serving.ensemble import EnsembleModel, compose, parse_ensemble
from serving.model import ModelLoadError
from serving.protocol.types import ColumnSpec, OutputSpec
from tests.serving.conftest import Server

SCORES = {1: "0.5", 2: "1.5", 3: "3.0"}  # the val_score tag of versions 1-3


@pytest.fixture(scope="module")
def ensemble_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import mlflow
    import mlflow.sklearn as mlflow_sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    root = tmp_path_factory.mktemp("ensemble")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("ensemble", artifact_location=(root / "a").as_uri())
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # an earlier test may have pointed the registry elsewhere
    frame = synthetic_metrics(500, seed=4)
    x, target = frame[["cpu_util", "memory_util"]], frame["network_mbps"]
    labels = (target > target.median()).astype("int64")
    try:
        for name, make in (("trees", DecisionTreeRegressor), ("labels", DecisionTreeClassifier)):
            y = target if name == "trees" else labels
            for depth in (1, 2, 3):
                model = make(max_depth=depth, random_state=0).fit(x, y)
                with mlflow.start_run(experiment_id=experiment):
                    mlflow_sklearn.log_model(
                        model,
                        name="model",
                        signature=infer_signature(x, model.predict(x)),
                        registered_model_name=name,
                        skops_trusted_types=SKOPS_TRUSTED_TYPES,
                        pip_requirements=[],
                    )
                client.set_model_version_tag(name, str(depth), "val_score", SCORES[depth])
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    args: list[str] = []
    for name, short in (("trees", "t"), ("labels", "l")):
        for v in (1, 2, 3):
            args += ["--model", f"{short}{v}=models:/{name}/{v}"]
    args += ["--ensemble", "avg=mean:t1,t2,t3", "--ensemble", "mid=median:t1,t2,t3"]
    args += ["--ensemble", "w=weighted:t1,t2,t3;weights=tag:val_score"]
    args += ["--ensemble", "fixed=weighted:t1,t2;weights=3,1", "--ensemble", "v=vote:l1,l2,l3"]
    # mlflow.set_*_uri also export MLFLOW_*_URI: name both, or an earlier test's leak in.
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("SERVING_MODELS", None)
    server = Server("ensemble", args, env, root / "server.log")
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _predict(server: Server, model: str, rows: int = 40) -> np.ndarray:
    frame = synthetic_metrics(rows, seed=8)
    inputs = [
        {"name": f, "shape": [rows], "datatype": "FP64", "data": frame[f].tolist()}
        for f in ("cpu_util", "memory_util")
    ]
    answer = httpx.post(
        f"{server.url}/v2/models/{model}/infer", json={"inputs": inputs}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return np.asarray(answer.json()["outputs"][0]["data"])


def test_mean_median_and_weighted_combine_the_members(ensemble_server: Server) -> None:
    members = np.stack([_predict(ensemble_server, f"t{v}") for v in (1, 2, 3)])
    assert not np.allclose(members[0], members[2]), "members must differ for the test to bite"
    assert np.allclose(_predict(ensemble_server, "avg"), members.mean(axis=0))
    assert np.allclose(_predict(ensemble_server, "mid"), np.median(members, axis=0))
    weights = [float(SCORES[v]) for v in (1, 2, 3)]  # from the registry tags
    assert np.allclose(_predict(ensemble_server, "w"), np.average(members, axis=0, weights=weights))
    fixed = np.average(members[:2], axis=0, weights=[3, 1])
    assert np.allclose(_predict(ensemble_server, "fixed"), fixed)


def test_vote_is_the_members_majority(ensemble_server: Server) -> None:
    members = [_predict(ensemble_server, f"l{v}").tolist() for v in (1, 2, 3)]
    expected = [Counter(column).most_common(1)[0][0] for column in zip(*members, strict=True)]
    assert _predict(ensemble_server, "v").tolist() == expected


def test_an_ensemble_is_a_model_like_any_other(ensemble_server: Server) -> None:
    meta = httpx.get(f"{ensemble_server.url}/v2/models/avg", timeout=30).json()
    assert meta["platform"] == "mlplatform_ensemble_mean"
    assert [i["name"] for i in meta["inputs"]] == ["cpu_util", "memory_util"]
    assert meta["outputs"][0]["datatype"] == "FP64"
    metrics = httpx.get(f"{ensemble_server.url}/metrics", timeout=30).text
    assert 'serving_requests_total{code="200",endpoint="v2_infer",model="avg"}' in metrics


def _fake(name: str, columns: tuple[str, ...], datatype: str = "FP64") -> Any:
    return SimpleNamespace(
        name=name,
        version="1",
        inputs=tuple(ColumnSpec(c, "double") for c in columns),
        outputs=(OutputSpec("predictions", datatype),),
    )


def test_members_must_share_the_signature() -> None:
    with pytest.raises(ModelLoadError, match="'b''s input signature differs from 'a''s"):
        compose(["e=mean:a,b"], [_fake("a", ("x",)), _fake("b", ("x", "y"))])


def test_averaging_needs_numeric_outputs() -> None:
    with pytest.raises(ModelLoadError, match="mean needs numeric outputs; use vote"):
        compose(["e=mean:a,b"], [_fake("a", ("x",), "BYTES"), _fake("b", ("x",), "BYTES")])
    labels = [_fake("a", ("x",), "BYTES"), _fake("b", ("x",), "BYTES")]
    assert isinstance(compose(["e=vote:a,b"], labels)[0], EnsembleModel)


def test_tag_weights_need_registry_members() -> None:
    with pytest.raises(ModelLoadError, match="is not a registry version, so it has no tag"):
        compose(["e=weighted:a,b;weights=tag:score"], [_fake("a", ("x",)), _fake("b", ("x",))])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("e=sum:a,b", "strategy 'sum' is not one of vote, mean, weighted, median"),
        ("e=mean:a", "needs two or more different members"),
        ("e=mean:a,zz", "zz not given with --model"),
        ("e=mean:a,b;weights=1,2", "weights are for the weighted strategy"),
        ("e=weighted:a,b", "weights are for the weighted strategy, and it needs them"),
        ("e=weighted:a,b;weights=1", "needs one positive weight per member (2)"),
        ("e=weighted:a,b;weights=1,x", "weights '1,x' are not numbers"),
        ("a=mean:a,b", "already the name of a --model"),
        ("nonsense", "must be NAME=STRATEGY:MODEL,MODEL"),
    ],
)
def test_bad_ensemble_specs_are_named(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_ensemble(raw, ["a", "b"])


def test_the_flag_is_checked_with_the_settings() -> None:
    from serving.settings import SettingsError, parse_settings

    with pytest.raises(SettingsError, match=r"^--ensemble: e: zz not given with --model$"):
        parse_settings(["--model", "a=models:/a/1", "--ensemble", "e=mean:a,zz"], {})
    env = {"SERVING_MODELS": "a=models:/a/1,b=models:/b/1", "SERVING_ENSEMBLES": "e=vote:a,b"}
    assert parse_settings([], env).ensembles == ("e=vote:a,b",)
