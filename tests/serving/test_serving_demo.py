"""The demo: registering twice works, the alias follows, and the printed curl lines are valid."""

from __future__ import annotations

import json
import re
import shlex
from typing import TYPE_CHECKING

import httpx
import pytest

from serving import demo
from serving.model import load_model, resolve_uri
from serving.protocol import decode_mlflow_request, decode_v2_request

if TYPE_CHECKING:
    from conftest import Registry, Server


def test_rerun_registers_the_next_version_and_moves_the_alias(registry: Registry) -> None:
    import mlflow

    mlflow.set_tracking_uri(registry.tracking_uri)
    assert (registry.root / "mlflow.db").is_file()
    assert (registry.root / "artifacts").is_dir()
    assert resolve_uri(registry.model_uri) == ("models:/anomaly-detector/2", "2")
    model = load_model("anomaly-detector", "models:/anomaly-detector/1")
    assert [c.name for c in model.inputs] == list(demo.FEATURES)
    assert {c.type for c in model.inputs} == {"double"}


def test_synthetic_metrics_are_deterministic_with_anomalies() -> None:
    a, b = demo.synthetic_metrics(500), demo.synthetic_metrics(500)
    assert a.equals(b)
    assert list(a.columns) == list(demo.FEATURES)
    assert (a.dtypes == "float64").all()
    assert (a["network_mbps"] > 2000).sum() >= 10  # the injected anomalies


def _curl(line: str) -> tuple[str, dict[str, object]]:
    args = shlex.split(line)
    return args[2], json.loads(args[args.index("-d") + 1])


@pytest.mark.integration
def test_printed_curl_lines_work_against_a_server(main_server: Server) -> None:
    lines = demo.curl_lines("127.0.0.1", main_server.port)
    assert len(lines) == 2
    with httpx.Client(timeout=30) as client:
        for line in lines:
            url, body = _curl(line)
            # The demo serves its model as "anomaly-detector"; the test server names it "anomaly".
            url = re.sub(r"/v2/models/[^/]+/", "/v2/models/anomaly/", url)
            r = client.post(url, json=body)
            assert r.status_code == 200, r.text
            data = r.json()
            predictions = data["outputs"][0]["data"] if "outputs" in data else data["predictions"]
            assert predictions == [1, -1]  # a normal row, then an obvious anomaly


def test_curl_bodies_decode_against_the_demo_schema() -> None:
    from serving.protocol import ColumnSpec

    columns = [ColumnSpec(name, "double") for name in demo.FEATURES]
    v2_line, split_line = demo.curl_lines("localhost", 8080)
    assert decode_v2_request(_curl(v2_line)[1], columns).rows == 2
    assert decode_mlflow_request(_curl(split_line)[1], columns).rows == 2
