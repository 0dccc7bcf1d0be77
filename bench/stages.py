"""Where a request's time goes: each stage of the service's hot path timed in-process.

``python -m bench.stages [--json] [--batch 64]`` trains the demo model in a temp
registry, loads it the way the service does (``serving.model.load_model``) and
times, with the service's own functions and no HTTP:

- per request: JSON decode (orjson), V2 validation/decode, response encode (orjson);
- per batch of ``--batch`` single-row requests: frame assembly, the predict the
  service calls (``Model.predict_frame``: the flavor's own where validating once is
  safe), ``mlflow.pyfunc`` predict for comparison, splitting the result per request.

It is a profile, not a test: the figures explain the HTTP benchmark's ceiling
(``docs/performance.md``). Exit status 0, or 2 for bad flags.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.serving import REQUEST_BODY, progress


def time_call(fn: Callable[[], object], seconds: float, min_calls: int = 5) -> float:
    """Return the median seconds per call of ``fn`` over about ``seconds`` (>= ``min_calls``)."""
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while len(samples) < min_calls or time.perf_counter() < end:
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(batch: int, seconds: float) -> dict[str, dict[str, float]]:
    """Time each hot-path stage; return ``{"per_request": {...}, "per_batch": {...}}`` in µs."""
    from serving.demo import train_and_register
    from serving.model import PreparedItem, load_model
    from serving.protocol import decode_v2_request, encode_v2_response

    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        uri = train_and_register(Path(tmp))
        model = load_model("anomaly-detector", uri)
    body = REQUEST_BODY.encode()
    outputs = [o.name for o in model.outputs]
    decoded = decode_v2_request(orjson.loads(body), model.inputs, outputs)
    items = [PreparedItem(decoded.columns, decoded.rows) for _ in range(batch)]
    frame = model.assemble(items)
    predictions = model.predict_batch(items)

    def encode() -> bytes:
        response = encode_v2_response(
            model.name, model.version, decoded.request_id, predictions[0], decoded.outputs
        )
        return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)

    us = 1e6
    per_request = {
        "json_decode": time_call(lambda: orjson.loads(body), seconds) * us,
        "v2_decode_validate": time_call(
            lambda: decode_v2_request(orjson.loads(body), model.inputs, outputs), seconds
        )
        * us,
        "encode_response": time_call(encode, seconds) * us,
    }
    predict = time_call(lambda: model.predict_frame(frame), seconds * 2)
    pyfunc = time_call(lambda: model.pyfunc.predict(frame), seconds * 2)
    whole = time_call(lambda: model.predict_batch(items), seconds * 2)
    assemble = time_call(lambda: model.assemble(items), seconds)
    per_batch = {
        "assemble_frame": assemble * us,
        "service_predict": predict * us,
        "pyfunc_predict": pyfunc * us,
        "split_results": max(0.0, whole - predict - assemble) * us,
    }
    return {"per_request": per_request, "per_batch": per_batch}


def main(argv: Sequence[str] | None = None) -> int:
    """Print the stage timings (text or ``--json``); see the module doc."""
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--batch", type=int, default=64, help="requests per batch (64)")
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per stage (1.0)")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 4096 or args.seconds <= 0:
        parser.error("need --batch in 1..4096 and --seconds > 0")
    result: dict[str, Any] = measure(args.batch, args.seconds)
    result["batch"] = args.batch
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    progress("done")
    print("per request (µs):")
    for name, value in result["per_request"].items():
        print(f"  {name:<20} {value:8.1f}")
    print(f"per batch of {args.batch} single-row requests (µs):")
    for name, value in result["per_batch"].items():
        print(f"  {name:<20} {value:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
