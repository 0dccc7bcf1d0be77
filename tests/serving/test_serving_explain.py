"""SHAP explanations through real HTTP: the demo IsolationForest from the session's real
MLflow registry, served by the main test server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from serving.demo import FEATURES, synthetic_metrics
from serving.errors import HttpError
from serving.explain import Explainer
from tests.serving.conftest import Registry, Server
from tests.serving.probes import probe_health


def _body(rows: int, seed: int = 31) -> dict[str, Any]:
    frame = synthetic_metrics(rows, seed=seed)
    inputs = [
        {"name": f, "shape": [rows], "datatype": "FP64", "data": frame[f].tolist()}
        for f in FEATURES
    ]
    return {"inputs": inputs}


def _outputs(answer: httpx.Response) -> dict[str, np.ndarray]:
    assert answer.status_code == 200, answer.text
    return {o["name"]: np.asarray(o["data"]) for o in answer.json()["outputs"]}


def _average_path_length(n: int) -> float:
    """c(n): the mean path length of an unsuccessful search in a binary search tree of n."""
    return 2.0 * (math.log(n - 1) + np.euler_gamma) - 2.0 * (n - 1) / n


def test_shap_values_add_up_to_the_models_own_score(
    main_server: Server, registry: Registry
) -> None:
    body = _body(8)
    explained = _outputs(
        httpx.post(f"{main_server.url}/v2/models/anomaly/explain", json=body, timeout=120)
    )
    assert set(explained) == {
        *(f"shap_{f}" for f in FEATURES),
        "base_value",
        "raw_output",
        *_outputs(httpx.post(f"{main_server.url}/v2/models/anomaly/infer", json=body, timeout=60)),
    }
    shap_sum = sum(explained[f"shap_{f}"] for f in FEATURES)
    assert np.allclose(explained["base_value"] + shap_sum, explained["raw_output"])
    # The model's own score, from the same registered version loaded here: an
    # IsolationForest scores -2 ** (-h / c(max_samples)), h the mean path length.
    import mlflow
    import mlflow.sklearn as mlflow_sklearn

    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(registry.tracking_uri)
    try:
        forest: Any = mlflow_sklearn.load_model(registry.model_uri)
    finally:
        mlflow.set_tracking_uri(previous_uri)
    frame = synthetic_metrics(8, seed=31)
    path_length = -_average_path_length(forest.max_samples_) * np.log2(-forest.score_samples(frame))
    assert np.allclose(explained["raw_output"], path_length)
    infer = _outputs(
        httpx.post(f"{main_server.url}/v2/models/anomaly/infer", json=body, timeout=60)
    )
    for name, values in infer.items():
        assert np.array_equal(explained[name], values), name


def test_too_many_rows_are_refused_naming_the_cap(main_server: Server) -> None:
    answer = httpx.post(f"{main_server.url}/v2/models/anomaly/explain", json=_body(101), timeout=60)
    assert answer.status_code == 413
    assert answer.json() == {
        "error": "explain takes at most 100 rows per request (--max-explain-rows); got 101"
    }


def test_health_answers_while_explanations_run(main_server: Server) -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=main_server.url, timeout=60) as client:
            calls = [
                client.post("/v2/models/anomaly/explain", json=_body(100, s)) for s in range(8)
            ]
            work = asyncio.ensure_future(asyncio.gather(*calls))
            await probe_health(main_server.url, work)
            assert all(r.status_code == 200 for r in await work)

    asyncio.run(scenario())


def _model(raw: object) -> Any:
    return SimpleNamespace(name="plain", pyfunc=SimpleNamespace(get_raw_model=lambda: raw))


def test_a_model_treeshap_cannot_explain_is_a_400() -> None:
    from sklearn.linear_model import LinearRegression

    frame = synthetic_metrics(50, seed=1)
    linear = LinearRegression().fit(frame, frame["cpu_util"])
    with pytest.raises(HttpError) as refused:
        asyncio.run(Explainer(_model(linear)).ready())
    assert refused.value.status == 400
    assert refused.value.message.startswith("model 'plain' cannot be explained by TreeSHAP: ")


def test_without_the_explain_extra_the_route_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "shap", None)  # import shap raises ImportError
    with pytest.raises(HttpError) as refused:
        asyncio.run(Explainer(_model(object())).ready())
    assert refused.value.status == 501
    assert "pip install 'mlplatform[explain]'" in refused.value.message


def test_unserved_model_is_404(main_server: Server) -> None:
    answer = httpx.post(f"{main_server.url}/v2/models/ghost/explain", json=_body(1), timeout=60)
    assert answer.status_code == 404


def test_a_broken_shap_install_is_a_501_and_a_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "shap.py").write_text("raise RuntimeError('no locator available')\n")
    monkeypatch.delitem(sys.modules, "shap", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HttpError) as refused:
        asyncio.run(Explainer(_model(object())).ready())
    assert (refused.value.status, refused.value.message) == (
        501,
        "explanations are unavailable: see the log",
    )
    assert any("no locator available" in str(r.__dict__.get("error")) for r in caplog.records)
