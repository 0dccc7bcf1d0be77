"""``mlplatform:inference``: the inference services of a stack, read into typed settings.

Only types, unknown keys and the rules that exist because several services share one
stack live here (a model name routes to one service only; a placement needs a pool of
that preset). Value rules (ranges, URIs, digests) are the component's
(``validate_inference_service_args``); ``infra.config`` runs it and names the key.

The layout (``docs/inference.md`` explains each key)::

    mlplatform:inference:
      image: <repository@sha256:...> | build
      allowModelAliases: false
      promotion: {requiredTags: {validation_status: passed}}
      services:
        <name>:
          models: {<model>: models:/<model>/<version>}
          placement: gpu | spot | system
          resources: {cpu, memory, cpuLimit, memoryLimit, gpu}
          replicas: {min, max}
          batching: {maxBatchSize, maxDelayMs, maxQueue, workers}
          rollout: {strategy, active, blue: {image, models}, green: {image, models},
                    canaryWeight, mirrorPercent}
          auth: {issuer, jwksUri, audiences}
          rateLimit: {requestsPerSecond, burst}
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from components.workloads.inference_args import (
    Batching,
    JwtAuth,
    RateLimit,
    Release,
    Resources,
    Rollout,
)

BUILD = "build"
_TOP = ("image", "allowModelAliases", "promotion", "services")
_SERVICE = (
    "models",
    "placement",
    "resources",
    "replicas",
    "batching",
    "rollout",
    "auth",
    "rateLimit",
)
_RESOURCES = {
    "cpu": "cpu",
    "memory": "memory",
    "cpuLimit": "cpu_limit",
    "memoryLimit": "memory_limit",
    "gpu": "gpu",
}
_BATCHING = {
    "maxBatchSize": "max_batch_size",
    "maxDelayMs": "max_delay_ms",
    "maxQueue": "max_queue",
    "workers": "workers",
}
_ROLLOUT = ("strategy", "active", "blue", "green", "canaryWeight", "mirrorPercent")
_AUTH = ("issuer", "jwksUri", "audiences")
_RATE = ("requestsPerSecond", "burst")


class Failer(Protocol):
    def fail(self, key: str, rule: str, value: Any = ...) -> None: ...


@dataclass(frozen=True)
class ServiceSettings:
    """One ``inference.services.<name>`` entry (component value types)."""

    models: Mapping[str, str]
    placement: str = "spot"
    resources: Resources = field(default_factory=Resources)
    min_replicas: int = 2
    max_replicas: int = 10
    batching: Batching = field(default_factory=Batching)
    rollout: Rollout = field(default_factory=Rollout)
    auth: JwtAuth | None = None
    rate_limit: RateLimit = field(default_factory=RateLimit)


@dataclass(frozen=True)
class InferenceSettings:
    """``mlplatform:inference``."""

    image: str = BUILD
    """A ``repository@sha256:`` digest, or ``build``."""
    allow_model_aliases: bool = False
    required_tags: Mapping[str, str] = field(default_factory=dict)
    """Tags a model version must carry to be promoted into this stack (``infra.promote``)."""
    services: Mapping[str, ServiceSettings] = field(default_factory=dict)


def _object(r: Failer, key: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        r.fail(key, "is not an object of settings", value)
        return None
    entry: dict[str, Any] = {}
    for name, item in value.items():
        if name in allowed:
            entry[name] = item
            continue
        close = difflib.get_close_matches(str(name), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        r.fail(f"{key}.{name}", f"unknown key{hint}; allowed: {', '.join(allowed)}")
    return entry


def _int(r: Failer, key: str, value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    r.fail(key, "is not an integer", value)
    return None


def _str(r: Failer, key: str, value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}"  # a quantity written as a number: cpu: 2
    r.fail(key, "is not a string", value)
    return None


def _str_map(r: Failer, key: str, value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        r.fail(key, "is not a map of strings to strings", value)
        return None
    return dict(value)


def _fields(
    r: Failer, key: str, raw: Any, names: Mapping[str, str], read: Callable[..., Any]
) -> dict[str, Any] | None:
    """Read an object of scalar fields into {python field: value}."""
    entry = _object(r, key, raw, tuple(names))
    if entry is None:
        return None
    out = {names[k]: read(r, f"{key}.{k}", v) for k, v in entry.items()}
    return None if any(v is None for v in out.values()) else out


def _release(r: Failer, key: str, raw: Any) -> Release | None:
    entry = _object(r, key, raw, ("image", "models"))
    if entry is None:
        return None
    image = _str(r, f"{key}.image", entry["image"]) if "image" in entry else None
    models = _str_map(r, f"{key}.models", entry["models"]) if "models" in entry else None
    return Release(image=image, models=models)


def _rollout(r: Failer, key: str, raw: Any) -> Rollout | None:
    entry = _object(r, key, raw, _ROLLOUT)
    if entry is None:
        return None
    values: dict[str, Any] = {}
    for name in ("strategy", "active"):
        if name in entry:
            values[name] = _str(r, f"{key}.{name}", entry[name])
    for name, attr in (("canaryWeight", "canary_weight"), ("mirrorPercent", "mirror_percent")):
        if name in entry:
            values[attr] = _int(r, f"{key}.{name}", entry[name])
    for colour in ("blue", "green"):
        if colour in entry:
            values[colour] = _release(r, f"{key}.{colour}", entry[colour])
    if any(v is None for v in values.values()):
        return None
    return Rollout(**values)


def _auth(r: Failer, key: str, raw: Any) -> JwtAuth | None:
    entry = _object(r, key, raw, _AUTH)
    if entry is None:
        return None
    missing = [k for k in _AUTH if k not in entry]
    for name in missing:
        r.fail(f"{key}.{name}", "missing required key (the gateway refuses calls without it)")
    audiences = entry.get("audiences")
    if audiences is not None and not (
        isinstance(audiences, list) and all(isinstance(a, str) for a in audiences)
    ):
        r.fail(f"{key}.audiences", "is not a list of strings", audiences)
        return None
    issuer = _str(r, f"{key}.issuer", entry.get("issuer", ""))
    jwks = _str(r, f"{key}.jwksUri", entry.get("jwksUri", ""))
    if missing or issuer is None or jwks is None:
        return None
    return JwtAuth(issuer=issuer, jwks_uri=jwks, audiences=list(audiences or []))


def _service(r: Failer, key: str, raw: Any) -> ServiceSettings | None:
    entry = _object(r, key, raw, _SERVICE)
    if entry is None:
        return None
    if "models" not in entry:
        r.fail(f"{key}.models", "missing required key (a map of model name -> models:/ URI)")
    if "auth" not in entry:
        r.fail(f"{key}.auth", "missing required key (issuer, jwksUri, audiences)")
    values: dict[str, Any] = {}
    if "models" in entry:
        values["models"] = _str_map(r, f"{key}.models", entry["models"])
    if "placement" in entry:
        values["placement"] = _str(r, f"{key}.placement", entry["placement"])
    if "resources" in entry:
        read = _fields(r, f"{key}.resources", entry["resources"], _RESOURCES, _resource_value)
        values["resources"] = Resources(**read) if read is not None else None
    if "replicas" in entry:
        read = _fields(r, f"{key}.replicas", entry["replicas"], {"min": "min", "max": "max"}, _int)
        if read is None:
            values["min_replicas"] = None
        else:
            values.update({f"{k}_replicas": v for k, v in read.items()})
    if "batching" in entry:
        read = _fields(r, f"{key}.batching", entry["batching"], _BATCHING, _int)
        values["batching"] = Batching(**read) if read is not None else None
    if "rollout" in entry:
        values["rollout"] = _rollout(r, f"{key}.rollout", entry["rollout"])
    if "auth" in entry:
        values["auth"] = _auth(r, f"{key}.auth", entry["auth"])
    if "rateLimit" in entry:
        names = {"requestsPerSecond": "requests_per_second", "burst": "burst"}
        read = _fields(r, f"{key}.rateLimit", entry["rateLimit"], names, _int)
        values["rate_limit"] = RateLimit(**read) if read is not None else None
    if "models" not in entry or "auth" not in entry or any(v is None for v in values.values()):
        return None
    return ServiceSettings(**values)


def _resource_value(r: Failer, key: str, value: Any) -> Any:
    return _int(r, key, value) if key.endswith(".gpu") else _str(r, key, value)


def read_inference(r: Failer, raw: Any) -> InferenceSettings | None:
    """Read ``inference`` (``None`` when absent: the stack runs no inference service)."""
    if raw is None:
        return None
    entry = _object(r, "inference", raw, _TOP)
    if entry is None:
        return None
    image = _str(r, "inference.image", entry.get("image", BUILD))
    allow = entry.get("allowModelAliases", False)
    if not isinstance(allow, bool):
        r.fail("inference.allowModelAliases", "is not a boolean", allow)
    tags: dict[str, str] | None = {}
    if "promotion" in entry:
        promotion = _object(r, "inference.promotion", entry["promotion"], ("requiredTags",))
        raw_tags = (promotion or {}).get("requiredTags", {})
        tags = _str_map(r, "inference.promotion.requiredTags", raw_tags)
    services_raw = entry.get("services", {})
    if not isinstance(services_raw, dict):
        r.fail("inference.services", "is not a map of services", services_raw)
        return None
    services = {
        name: _service(r, f"inference.services.{name}", value)
        for name, value in sorted(services_raw.items())
    }
    owner: dict[str, str] = {}
    for name, service in services.items():
        for model in _model_names(service):
            if model in owner and owner[model] != name:
                r.fail(
                    f"inference.services.{name}.models.{model}",
                    f"is also served by service {owner[model]!r}; a model name routes to "
                    "one service (/v2/models/<name>)",
                )
            owner.setdefault(model, name)
    if image is None or not isinstance(allow, bool) or tags is None:
        return None
    if any(s is None for s in services.values()):
        return None
    return InferenceSettings(
        image=image,
        allow_model_aliases=allow,
        required_tags=tags,
        services={k: v for k, v in services.items() if v is not None},
    )


def _model_names(service: ServiceSettings | None) -> list[str]:
    if service is None:
        return []
    names = list(service.models)
    for colour in ("blue", "green"):
        names += list(service.rollout.release(colour).models or {})
    return names


def service_keys(name: str, service: ServiceSettings) -> dict[str, str]:
    """{InferenceServiceArgs field: config key} of service ``name``."""
    base = f"inference.services.{name}"
    keys = {
        "name": base,
        "image": "inference.image",
        "models": f"{base}.models",
        "placement": f"{base}.placement",
        "min_replicas": f"{base}.replicas.min",
        "max_replicas": f"{base}.replicas.max",
        "auth.issuer": f"{base}.auth.issuer",
        "auth.jwks_uri": f"{base}.auth.jwksUri",
        "auth.audiences": f"{base}.auth.audiences",
        "rate_limit.requests_per_second": f"{base}.rateLimit.requestsPerSecond",
        "rate_limit.burst": f"{base}.rateLimit.burst",
        "rollout.strategy": f"{base}.rollout.strategy",
        "rollout.active": f"{base}.rollout.active",
        "rollout.canary_weight": f"{base}.rollout.canaryWeight",
        "rollout.mirror_percent": f"{base}.rollout.mirrorPercent",
    }
    keys.update({f"resources.{v}": f"{base}.resources.{k}" for k, v in _RESOURCES.items()})
    keys.update({f"batching.{v}": f"{base}.batching.{k}" for k, v in _BATCHING.items()})
    for model in service.models:
        keys[f"models.{model}"] = f"{base}.models.{model}"
    for colour in ("blue", "green"):
        keys[f"rollout.{colour}.image"] = f"{base}.rollout.{colour}.image"
        keys[f"rollout.{colour}.models"] = f"{base}.rollout.{colour}.models"
        for model in service.rollout.release(colour).models or {}:
            keys[f"rollout.{colour}.models.{model}"] = f"{base}.rollout.{colour}.models.{model}"
    return keys
