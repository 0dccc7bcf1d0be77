"""The inference pod's own command line and environment, run for real on 127.0.0.1.

The Deployment the dev plan captures is started as planned, with three stand-ins for
what only exists in a cluster: the interpreter (this virtualenv's, for the image's
``python``), the address (``SERVING_HOST``/``SERVING_PORT``: 127.0.0.1 and a free port)
and the MLflow server (a local registry holding the demo model under the planned URI).
The OTLP endpoint is left out: no collector listens here. Every flag is the plan's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from components.services.ml_tenancy import SERVING_NAMESPACE
from serving import demo
from tests.components.workloads.stacks import deployments, plan_stack
from tests.serving.probes import wait_ready

#: Generous: MLflow's import and the model load on two shared cores.
READY_TIMEOUT_S = 300.0

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


V2_BODY = {
    "inputs": [
        {
            "name": "input",
            "shape": [2, 3],
            "datatype": "FP64",
            "data": [[41.0, 52.5, 120.0], [99.0, 3.0, 4200.0]],
        }
    ]
}


def infer_rows(base: str, rows: int) -> int:
    """POST ``rows`` rows; return the status, -1 when the connection was refused (the
    listener closed after the drain began), and check a 200 answers every row."""
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": [rows, 3],
                "datatype": "FP64",
                "data": [[41.0, 52.5, 120.0]] * rows,
            }
        ]
    }
    try:
        with httpx.Client(timeout=60.0) as client:
            answer = client.post(f"{base}/v2/models/anomaly-detector/infer", json=body)
    except httpx.TransportError:
        return -1
    if answer.status_code == 200:
        assert answer.json()["outputs"][0]["shape"][0] == rows
    return answer.status_code


def wait_busy(base: str, timeout_s: float) -> None:
    """Wait (bounded) until the service reports a batch being predicted."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            for line in client.get(f"{base}/metrics").text.splitlines():
                if line.startswith("serving_batches_in_flight{") and float(line.split()[-1]) > 0:
                    return
            time.sleep(0.05)  # polling interval of a bounded wait
    raise AssertionError(f"no batch in flight after {timeout_s}s")


def test_the_planned_pod_serves_and_drains_within_its_grace_period(tmp_path: Path) -> None:
    plan = plan_stack("dev")
    (deployment,) = deployments(plan).values()
    pod = deployment["spec"]["template"]["spec"]
    (box,) = pod["containers"]
    grace = pod["terminationGracePeriodSeconds"]
    command = box["command"]
    assert command[:3] == ["python", "-m", "serving"]
    # The registry credentials come from the Secret the plan writes (a local registry
    # ignores them, as a server without basic-auth would).
    secrets = {
        s.inputs["metadata"]["name"]: s.inputs["stringData"]
        for s in plan.run.by_type("kubernetes:core/v1:Secret")
        if s.inputs["metadata"].get("namespace") == SERVING_NAMESPACE
    }
    planned_env = {
        e["name"]: e["value"]
        if "value" in e
        else secrets[e["valueFrom"]["secretKeyRef"]["name"]][e["valueFrom"]["secretKeyRef"]["key"]]
        for e in box["env"]
    }

    root = tmp_path / "mlflow"
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    assert demo.main(["--no-serve", "--root", str(root), "--n-estimators", "20"]) == 0
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SERVING_", "OTEL_"))},
        **planned_env,
        "SERVING_HOST": "127.0.0.1",
        "SERVING_PORT": str(port),
        "MLFLOW_TRACKING_URI": demo.tracking_uri_for(root),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT")
    log_path = tmp_path / "pod.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *command[1:]], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log_path.read_text, READY_TIMEOUT_S)
        with httpx.Client(timeout=5.0) as client:
            answer = client.post(f"{base}/v2/models/anomaly-detector/infer", json=V2_BODY)
            assert answer.status_code == 200, answer.text
            (output,) = answer.json()["outputs"]
            assert output["shape"][0] == 2 and len(output["data"]) == 2
            assert client.get(f"{base}/v2/health/live").status_code == 200
        # SIGTERM while large requests are in flight: each admitted one is answered in
        # full, later ones are refused with 503, and the process ends within the grace.
        with ThreadPoolExecutor(max_workers=6) as pool:
            calls = [pool.submit(infer_rows, base, 2000) for _ in range(6)]
            wait_busy(base, timeout_s=60.0)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            codes = [call.result(timeout=grace) for call in calls]
        code = proc.wait(timeout=grace)
        assert code == 0, log_path.read_text()
        assert time.monotonic() - started < grace
        assert set(codes) <= {200, 503, -1} and 200 in codes, codes
        assert "drained" in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
