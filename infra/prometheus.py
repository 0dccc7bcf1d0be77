"""Prometheus' HTTP query API, for the operator reports (SLA, right-sizing).

One instant query (``/api/v1/query``) at the current time, its vector result returned as
``(labels, value)`` pairs; NaN samples (a ratio over no data) are left out. Every failure
is a :class:`PrometheusError` whose message is one line naming the server.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, cast

QUERY_TIMEOUT_S = 10.0
DURATION = re.compile(r"^(\d+(ms|[smhdwy]))+$")
"""A Prometheus duration (``30d``, ``1h30m``)."""

Sample = tuple[dict[str, str], float]


class PrometheusError(Exception):
    """Prometheus could not be reached or refused the query (the message is one line)."""


def check_url(url: str) -> None:
    """Raise ``PrometheusError`` unless ``url`` is an ``http(s)://`` URL."""
    if not url.startswith(("http://", "https://")):
        raise PrometheusError(f"--prometheus {url!r}: must be an http(s):// URL")


def check_window(window: str) -> None:
    """Raise ``PrometheusError`` unless ``window`` is a Prometheus duration."""
    if not DURATION.match(window):
        raise PrometheusError(f"--window {window!r}: not a Prometheus duration (e.g. 30d)")


def instant(base_url: str, promql: str) -> list[Sample]:
    """Run ``promql`` as an instant query; return each vector sample's labels and value."""
    url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=QUERY_TIMEOUT_S) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise PrometheusError(
            f"Prometheus at {base_url} refused the query: HTTP {exc.code}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PrometheusError(f"cannot reach Prometheus at {base_url}: {reason}") from None
    except ValueError:
        raise PrometheusError(
            f"Prometheus at {base_url} answered with something not JSON"
        ) from None
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus at {base_url}: {body.get('error', 'query failed')}")
    samples: list[Sample] = []
    for sample in cast(list[dict[str, Any]], body["data"]["result"]):
        value = float(sample["value"][1])
        if value == value:  # NaN: nothing to divide in the window
            samples.append(({str(k): str(v) for k, v in sample["metric"].items()}, value))
    return samples
