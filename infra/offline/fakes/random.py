"""What ``pulumi-random`` would generate: fixed values derived from type and name.

A generated password or id must look random to the program (right length, right
alphabet) yet stay the same run to run, so a plan can be compared with the last one.
"""

from __future__ import annotations

import base64
from typing import Any

from infra.offline.fakes.registry import FakeResource, Registry, ResourceFake, hex_digest

RESOURCES: Registry[ResourceFake] = Registry("infra/offline/fakes/random.py")


@RESOURCES.fallback("random:")
def random_value(r: FakeResource) -> dict[str, Any]:
    """Any ``random:`` type: ``result`` (``length`` characters, default 24), ``hex`` and
    its base64 forms (``byteLength`` bytes, default 8)."""
    h = r.digest
    raw = bytes.fromhex(h)
    hex_value = h[: 2 * int(r.inputs.get("byteLength", 8))]
    length = int(r.inputs.get("length", 24))
    text, seed = base64.b64encode(raw).decode(), h
    while len(text) < length:  # longer than one digest: keep hashing
        seed = hex_digest(seed, 64)
        text += base64.b64encode(bytes.fromhex(seed)).decode()
    return {
        "id": h[:16],
        "result": text[:length],
        "hex": hex_value,
        "b64Std": base64.b64encode(bytes.fromhex(hex_value)).decode(),
        "b64Url": base64.urlsafe_b64encode(bytes.fromhex(hex_value)).decode().rstrip("="),
    }
