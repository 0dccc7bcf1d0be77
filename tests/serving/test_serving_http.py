"""Integration: real uvicorn (``python -m serving``) serving a model from a real MLflow registry."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
import pytest

if TYPE_CHECKING:
    from conftest import Registry, Server

pytestmark = pytest.mark.integration

FEATURES = ["cpu_util", "memory_util", "network_mbps"]
JSON = {"Content-Type": "application/json"}


def distinct_rows(n: int, seed: int = 3) -> np.ndarray:
    """Rows alternating at random between normal load and obvious anomalies."""
    rng = np.random.default_rng(seed)
    normal = np.column_stack([rng.normal(45, 5, n), rng.normal(52, 4, n), rng.gamma(4.0, 30.0, n)])
    odd = np.column_stack(
        [rng.uniform(95, 100, n), rng.uniform(1, 8, n), rng.uniform(2000, 5000, n)]
    )
    pick = rng.random(n) < 0.5
    return np.round(np.where(pick[:, None], odd, normal), 3)


def v2_columns(rows: np.ndarray, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [
            {"name": f, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, i].tolist()}
            for i, f in enumerate(FEATURES)
        ]
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def v2_matrix(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "input", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}
        ]
    }


@pytest.fixture(scope="module")
def reference(registry: Registry) -> Any:
    """The same registered model version, loaded in-process through MLflow."""
    import mlflow
    import mlflow.pyfunc

    mlflow.set_tracking_uri(registry.tracking_uri)
    return mlflow.pyfunc.load_model(registry.model_uri)


def expected(reference: Any, rows: np.ndarray) -> list[int]:
    return [int(v) for v in reference.predict(pd.DataFrame(rows, columns=FEATURES))]


def test_health_and_metadata(main_server: Server) -> None:
    with httpx.Client(base_url=main_server.url, timeout=10) as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert client.get("/v2").json()["name"]
        meta = client.get("/v2/models/anomaly").json()
        assert meta["name"] == "anomaly"
        assert meta["versions"] == ["2"]  # the alias resolved to the registry version
        assert meta["platform"] == "mlflow"
        assert [i["name"] for i in meta["inputs"]] == FEATURES
        assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
        assert meta["outputs"][0]["datatype"] == "INT64"
        assert client.get("/v2/models/anomaly/ready").json() == {"name": "anomaly", "ready": True}
        assert client.get("/v2/models/anomaly/versions/2").status_code == 200
        assert client.get("/v2/models/anomaly/versions/1").status_code == 404


def test_v2_infer_column_and_matrix_tensors(main_server: Server, reference: Any) -> None:
    rows = distinct_rows(5)
    want = expected(reference, rows)
    with httpx.Client(base_url=main_server.url, timeout=30) as client:
        r = client.post("/v2/models/anomaly/infer", json=v2_columns(rows, "req-7"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        assert (body["model_name"], body["model_version"], body["id"]) == ("anomaly", "2", "req-7")
        (out,) = body["outputs"]
        assert out["shape"] == [5] and out["datatype"] == "INT64"
        assert out["data"] == want
        r = client.post("/v2/models/anomaly/versions/2/infer", json=v2_matrix(rows))
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == want


def test_invocations_formats(main_server: Server, reference: Any) -> None:
    rows = distinct_rows(4, seed=11)
    want = expected(reference, rows)
    records = [dict(zip(FEATURES, r, strict=True)) for r in rows.tolist()]
    bodies = [
        {"dataframe_split": {"columns": FEATURES, "data": rows.tolist()}},
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": {f: rows[:, i].tolist() for i, f in enumerate(FEATURES)}},
    ]
    with httpx.Client(base_url=main_server.url, timeout=30) as client:
        for body in bodies:
            r = client.post("/invocations", json=body)
            assert r.status_code == 200, (body, r.text)
            assert r.json() == {"predictions": want}


async def _fire(url: str, bodies: list[dict[str, Any]], headers: dict[str, str] | None = None,
                path: str = "/v2/models/anomaly/infer") -> list[httpx.Response]:  # fmt: skip
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post(path, json=b, headers=headers) for b in bodies))


def test_200_concurrent_requests_each_get_their_own_prediction(
    main_server: Server, reference: Any
) -> None:
    rows = distinct_rows(200, seed=5)
    want = expected(reference, rows)
    assert 20 < sum(w == -1 for w in want) < 180  # both outcomes present: swaps would show
    bodies = [
        v2_columns(rows[i : i + 1], f"r{i}") if i % 2 else v2_matrix(rows[i : i + 1])
        for i in range(200)
    ]
    before = httpx.get(f"{main_server.url}/metrics", timeout=10).text
    responses = asyncio.run(_fire(main_server.url, bodies))
    after = httpx.get(f"{main_server.url}/metrics", timeout=10).text
    for i, r in enumerate(responses):
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [want[i]], f"request {i} got another row's answer"
        if i % 2:
            assert r.json()["id"] == f"r{i}"
    # They were batched: more requests than batches, i.e. an average batch above 1.
    requests = _metric(after, "serving_batch_requests_sum", model="anomaly") - _metric(
        before, "serving_batch_requests_sum", model="anomaly"
    )
    batches = _metric(after, "serving_batch_requests_count", model="anomaly") - _metric(
        before, "serving_batch_requests_count", model="anomaly"
    )
    assert requests == 200 and 0 < batches < requests, (requests, batches)


BAD = [
    ("malformed JSON", b'{"inputs": [', 400, "malformed JSON"),
    ("missing feature", {"inputs": v2_columns(np.ones((1, 3)))["inputs"][:2]}, 400,
     "missing input 'network_mbps'"),
    ("extra feature", {"inputs": [*v2_columns(np.ones((1, 3)))["inputs"],
     {"name": "disk", "shape": [1], "datatype": "FP64", "data": [1.0]}]}, 400,
     "unexpected input 'disk'"),
    ("wrong datatype", {"inputs": [{**t, "datatype": "BYTES", "data": ["x"]}
     if t["name"] == "cpu_util" else t for t in v2_columns(np.ones((1, 3)))["inputs"]]}, 400,
     "input 'cpu_util': datatype BYTES cannot be converted"),
    ("wrong shape", {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64",
     "data": [1.0, 2.0, 3.0, 4.0]}]}, 400, "has 4 columns, the model expects 3"),
    ("empty input", {"inputs": [{"name": "input", "shape": [0, 3], "datatype": "FP64",
     "data": []}]}, 400, "empty input"),
    ("oversized body", b'{"inputs": [' + b" " * 70_000 + b"]}", 413, "exceeds the limit"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "status", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_documented_status(
    main_server: Server, case: str, body: Any, status: int, message: str
) -> None:
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    with httpx.Client(base_url=main_server.url, timeout=30) as client:
        r = client.post("/v2/models/anomaly/infer", content=content, headers=JSON)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["error"]
    assert "Traceback" not in r.text


def test_unknown_model_method_and_media_type(main_server: Server) -> None:
    with httpx.Client(base_url=main_server.url, timeout=30) as client:
        r = client.post("/v2/models/nope/infer", json=v2_matrix(np.ones((1, 3))))
        assert r.status_code == 404
        assert r.json()["error"] == "model 'nope' is not served"
        r = client.get("/v2/models/anomaly/infer")
        assert r.status_code == 405 and "error" in r.json()
        r = client.post("/invocations", content=b"a,b\n1,2", headers={"Content-Type": "text/csv"})
        assert r.status_code == 415 and "application/json" in r.json()["error"]
        r = client.post("/invocations", json={"dataframe_records": [{"cpu_util": 1.0}]})
        assert r.status_code == 400 and "missing column 'memory_util'" in r.json()["error"]
        r = client.post(
            "/v2/models/anomaly/infer", json=v2_matrix(np.ones((1, 3))),
            headers={"X-Request-Timeout-Ms": "soon"},
        )  # fmt: skip
        assert r.status_code == 400 and "X-Request-Timeout-Ms" in r.json()["error"]


def test_queue_overflow_gives_429_with_retry_after(limited_server: Server) -> None:
    bodies = [v2_matrix(distinct_rows(1, seed=i)) for i in range(64)]
    responses = asyncio.run(_fire(limited_server.url, bodies))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429}, codes
    assert 200 in codes and 429 in codes
    refused = [r for r in responses if r.status_code == 429]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert "queue is full" in refused[0].json()["error"]


def test_deadline_exceeded_gives_504(main_server: Server) -> None:
    bodies = [v2_matrix(distinct_rows(1, seed=i)) for i in range(200)]
    responses = asyncio.run(_fire(main_server.url, bodies, {"X-Request-Timeout-Ms": "1"}))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 504}, codes
    assert 504 in codes
    timed_out = next(r for r in responses if r.status_code == 504)
    assert "deadline exceeded" in timed_out.json()["error"]


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_move_with_traffic(main_server: Server, limited_server: Server) -> None:
    with httpx.Client(base_url=main_server.url, timeout=30) as client:
        before = client.get("/metrics")
        assert before.status_code == 200
        assert before.headers["content-type"].startswith("text/plain")
        asyncio.run(
            _fire(main_server.url, [v2_matrix(distinct_rows(1, seed=i)) for i in range(32)])
        )
        client.post("/v2/models/anomaly/infer", json={"inputs": []})
        after = client.get("/metrics").text
    ok = dict(model="anomaly", code="200", endpoint="v2_infer")
    assert _metric(after, "serving_requests_total", **ok) >= (
        _metric(before.text, "serving_requests_total", **ok) + 32
    )
    assert _metric(after, "serving_requests_total", model="anomaly", code="400") >= 1
    for hist in ("serving_request_duration_seconds", "serving_queue_wait_seconds",
                 "serving_batch_size_rows", "serving_batch_duration_seconds"):  # fmt: skip
        assert _metric(after, hist + "_count", model="anomaly") > _metric(
            before.text, hist + "_count", model="anomaly"
        ), hist
    assert _metric(after, "serving_batch_dispatch_total", model="anomaly") > 0
    assert re.search(r'^serving_queue_depth\{model="anomaly"\} ', after, re.MULTILINE)
    asyncio.run(_fire(limited_server.url, [v2_matrix(distinct_rows(1, seed=i)) for i in range(64)]))
    with httpx.Client(base_url=limited_server.url, timeout=30) as client:
        tight = client.get("/metrics").text
    assert _metric(tight, "serving_rejected_total", model="anomaly") > 0
