"""On-demand prices of the instance types the stack files name, for the right-sizing report.

Source: Amazon EC2 On-Demand Pricing, https://aws.amazon.com/ec2/pricing/on-demand/,
Linux, US West (Oregon) (``us-west-2``, the region of both stack files), shared tenancy,
as listed in June 2026. List prices change and accounts have discounts (Savings Plans,
spot): ``python -m infra.rightsizing --prices FILE`` takes the operator's own table in
the same shape, ``{"m7i.xlarge": {"usdPerHour": 0.2016, "vcpus": 4, "memoryGib": 16,
"gpus": 0}, ...}``. A test keeps every instance type of both stack files in this table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_AS_OF = "2026-06"
REGION = "us-west-2"
HOURS_PER_MONTH = 730  # AWS's own monthly convention (365 * 24 / 12)


@dataclass(frozen=True)
class InstancePrice:
    """One instance type's hourly on-demand price and what it holds."""

    usd_per_hour: float
    vcpus: int
    memory_gib: float
    gpus: int = 0

    def share(self, cpu_cores: float, memory_bytes: float, gpus: int = 0) -> float:
        """The fraction of the node a pod's requests reserve: the largest of its CPU,
        memory and GPU fractions (what is reserved on one axis cannot be sold on another)."""
        fractions = [cpu_cores / self.vcpus, memory_bytes / (self.memory_gib * 2**30)]
        if self.gpus:
            fractions.append(gpus / self.gpus)
        return max(fractions)


ON_DEMAND: dict[str, InstancePrice] = {
    # General purpose (system pool, spot pool)
    "m5.xlarge": InstancePrice(0.192, 4, 16),
    "m6a.xlarge": InstancePrice(0.1728, 4, 16),
    "m6a.2xlarge": InstancePrice(0.3456, 8, 32),
    "m6i.xlarge": InstancePrice(0.192, 4, 16),
    "m6i.2xlarge": InstancePrice(0.384, 8, 32),
    "m7a.xlarge": InstancePrice(0.23184, 4, 16),
    "m7a.2xlarge": InstancePrice(0.46368, 8, 32),
    "m7i.large": InstancePrice(0.1008, 2, 8),
    "m7i.xlarge": InstancePrice(0.2016, 4, 16),
    "m7i.2xlarge": InstancePrice(0.4032, 8, 32),
    # GPU pool: NVIDIA A10G (g5), L4 (g6), L40S (g6e)
    "g5.xlarge": InstancePrice(1.006, 4, 16, 1),
    "g5.2xlarge": InstancePrice(1.212, 8, 32, 1),
    "g6.xlarge": InstancePrice(0.8048, 4, 16, 1),
    "g6.2xlarge": InstancePrice(0.9776, 8, 32, 1),
    "g6e.xlarge": InstancePrice(1.861, 4, 32, 1),
}


class PriceFileError(Exception):
    """The ``--prices`` file cannot be read or has a bad entry (one line naming it)."""


def load(path: Path) -> dict[str, InstancePrice]:
    """Read a price table in :data:`ON_DEMAND`'s JSON shape (see the module docstring)."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PriceFileError(f"--prices {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise PriceFileError(f"--prices {path}: must be a JSON object keyed by instance type")
    table: dict[str, InstancePrice] = {}
    for name, entry in raw.items():
        where = f"--prices {path}: {name}"
        if not isinstance(entry, dict):
            raise PriceFileError(f"{where}: must be an object")
        try:
            price = InstancePrice(
                usd_per_hour=float(entry["usdPerHour"]),
                vcpus=int(entry["vcpus"]),
                memory_gib=float(entry["memoryGib"]),
                gpus=int(entry.get("gpus", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PriceFileError(
                f"{where}: needs usdPerHour, vcpus and memoryGib numbers (and optional gpus): {exc}"
            ) from None
        if price.usd_per_hour < 0 or price.vcpus <= 0 or price.memory_gib <= 0 or price.gpus < 0:
            raise PriceFileError(f"{where}: prices and sizes must be positive")
        table[str(name)] = price
    return table
