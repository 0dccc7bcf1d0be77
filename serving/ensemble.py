"""Ensembles: a served model composed of other served models.

``--ensemble NAME=STRATEGY:MODEL_A,MODEL_B[,...][;weights=W_A,W_B,...|;weights=tag:TAG]``
(repeatable; ``SERVING_ENSEMBLES`` holds several separated by spaces) serves ``NAME``
as a model like any other (V2 metadata, metrics, routing, batching) whose every batch
runs each member's predict once on the same rows and combines their outputs, per
output and row:

- ``vote``: the value most members gave (a tie goes to the earliest member's value);
- ``mean``, ``median``: of the members' values;
- ``weighted``: the weighted mean, with weights from the flag or read at start from
  each member's registry version tag ``TAG`` (e.g. a validation score logged by CI):
  never weights written into code.

Members are models given with ``--model``, at least two, all with the same input
signature and output names (refused at start otherwise); ``mean``, ``median`` and
``weighted`` need numeric outputs. An ensemble predicts in the service's own process,
through its members' in-process predict.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serving.model import Model, ModelLoadError, PreparedItem
from serving.protocol import Prediction
from serving.protocol.types import OutputSpec

STRATEGIES = ("vote", "mean", "weighted", "median")
NUMERIC = frozenset({"BOOL", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"})
_SPEC = re.compile(r"^(?P<name>[^=\s]+)=(?P<strategy>\w+):(?P<members>[^;]+)(;weights=(?P<w>.+))?$")
_PINNED = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class EnsembleSpec:
    name: str
    strategy: str
    members: tuple[str, ...]
    weights: tuple[float, ...] | None = None
    weight_tag: str | None = None


def parse_ensemble(raw: str, models: Sequence[str]) -> EnsembleSpec:
    """Parse one ``--ensemble`` value against the served ``models``' names; ``ValueError``
    naming what is wrong and what is allowed."""
    match = _SPEC.match(raw.strip())
    if match is None:
        raise ValueError(
            f"{raw!r} must be NAME=STRATEGY:MODEL,MODEL[,...][;weights=W,W,...|;weights=tag:TAG]"
        )
    name, strategy = match["name"], match["strategy"]
    members = tuple(m.strip() for m in match["members"].split(","))
    if strategy not in STRATEGIES:
        raise ValueError(f"{name}: strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if len(members) < 2 or len(set(members)) != len(members):
        raise ValueError(f"{name}: needs two or more different members, got {', '.join(members)}")
    unknown = [m for m in members if m not in models]
    if unknown:
        raise ValueError(f"{name}: {', '.join(unknown)} not given with --model")
    if name in models:
        raise ValueError(f"{name}: already the name of a --model")
    raw_weights = match["w"]
    if (raw_weights is None) != (strategy != "weighted"):
        raise ValueError(f"{name}: weights are for the weighted strategy, and it needs them")
    if raw_weights is None:
        return EnsembleSpec(name, strategy, members)
    if raw_weights.startswith("tag:"):
        return EnsembleSpec(name, strategy, members, weight_tag=raw_weights[4:])
    try:
        weights = tuple(float(w) for w in raw_weights.split(","))
    except ValueError:
        raise ValueError(f"{name}: weights {raw_weights!r} are not numbers") from None
    if len(weights) != len(members) or not all(w > 0 for w in weights):
        raise ValueError(f"{name}: needs one positive weight per member ({len(members)})")
    return EnsembleSpec(name, strategy, members, weights=weights)


def _tag_weight(model: Model, tag: str, ensemble: str) -> float:
    source = getattr(model, "source", None)
    pinned = _PINNED.match(source) if isinstance(source, str) else None
    if pinned is None:
        raise ModelLoadError(
            f"ensemble {ensemble!r}: member {model.name!r} is not a registry version, "
            f"so it has no tag {tag!r}"
        )
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version(pinned["name"], pinned["version"])
    value = version.tags.get(tag)
    try:
        weight = float(value) if value is not None else float("nan")
    except ValueError:
        weight = float("nan")
    if not weight > 0:
        raise ModelLoadError(
            f"ensemble {ensemble!r}: member {model.name!r} ({source}) has no positive "
            f"numeric tag {tag!r} (got {value!r})"
        )
    return weight


class EnsembleModel:
    """A model whose predict combines its members' predictions (see the module doc)."""

    version = "1"

    def __init__(self, spec: EnsembleSpec, members: Sequence[Model]) -> None:
        self.name = spec.name
        self.strategy = spec.strategy
        self.members = list(members)
        self.platform = f"mlplatform_ensemble_{spec.strategy}"
        first = self.members[0]
        for member in self.members[1:]:
            if member.inputs != first.inputs:
                raise ModelLoadError(
                    f"ensemble {spec.name!r}: {member.name!r}'s input signature differs "
                    f"from {first.name!r}'s"
                )
            if [o.name for o in member.outputs] != [o.name for o in first.outputs]:
                raise ModelLoadError(
                    f"ensemble {spec.name!r}: {member.name!r}'s outputs differ "
                    f"from {first.name!r}'s"
                )
        numeric = all(o.datatype in NUMERIC for m in self.members for o in m.outputs)
        if spec.strategy != "vote" and not numeric:
            raise ModelLoadError(
                f"ensemble {spec.name!r}: {spec.strategy} needs numeric outputs; use vote"
            )
        self.inputs = first.inputs
        self.outputs = tuple(
            o if spec.strategy == "vote" else OutputSpec(o.name, "FP64", o.shape)
            for o in first.outputs
        )
        weights = spec.weights
        if spec.weight_tag is not None:
            weights = tuple(_tag_weight(m, spec.weight_tag, spec.name) for m in self.members)
        self.weights = weights

    def _combine(self, stacked: np.ndarray) -> np.ndarray:
        if self.strategy == "mean":
            return stacked.astype("float64").mean(axis=0)
        if self.strategy == "median":
            return np.median(stacked.astype("float64"), axis=0)
        if self.strategy == "weighted":
            return np.average(stacked.astype("float64"), axis=0, weights=self.weights)
        votes = []
        for row in np.moveaxis(stacked, 0, -1).reshape(-1, stacked.shape[0]).tolist():
            counts = Counter(row)
            top = max(counts.values())
            votes.append(next(v for v in row if counts[v] == top))  # earliest member wins ties
        return np.asarray(votes, dtype=stacked.dtype).reshape(stacked.shape[1:])

    def predict_batch(self, items: Sequence[PreparedItem]) -> list[Prediction]:
        """Each member predicts the batch once; outputs combine per item, output and row."""
        per_member = [m.predict_batch(items) for m in self.members]
        results = []
        for i in range(len(items)):
            outputs = {
                name: self._combine(np.stack([p[i].outputs[name] for p in per_member]))
                for name in per_member[0][i].outputs
            }
            results.append(Prediction(outputs, per_member[0][i].tabular))
        return results


def compose(raw_specs: Sequence[str], models: Sequence[Model]) -> list[EnsembleModel]:
    """The ensembles ``raw_specs`` name, over ``models`` (already parsed by the settings)."""
    by_name = {m.name: m for m in models}
    ensembles = []
    for raw in raw_specs:
        spec = parse_ensemble(raw, list(by_name))
        ensembles.append(EnsembleModel(spec, [by_name[m] for m in spec.members]))
    return ensembles
