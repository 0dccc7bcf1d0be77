"""What an :class:`~components.workloads.inference.InferenceService` is given, its value
rules, and the numbers derived from the service's own timeouts.

The timeouts are set once here and passed to the service as flags, so the pod's grace
period, the route timeout and the gateway's body cap are computed from the values the
service runs with, never typed twice:

- ``PRESTOP_S`` (10 s) keeps a terminating pod serving while the endpoint removal reaches
  every gateway (kube-proxy and Istio push it in about 1-5 s);
- then SIGTERM: the service stops admitting and drains for up to ``DRAIN_TIMEOUT_S``;
- ``termination_grace_s`` = preStop + drain + ``GRACE_MARGIN_S`` (the interpreter's exit).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi

from components._validate import Problem
from components.services.tenancy import (
    GATEWAY_LABELS,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    GATEWAY_SERVICE_ACCOUNT,
)

Placement = Literal["gpu", "spot", "system"]
Strategy = Literal["rolling", "blue-green", "canary", "shadow"]
Colour = Literal["blue", "green"]
PLACEMENTS: tuple[Placement, ...] = ("gpu", "spot", "system")
STRATEGIES: tuple[Strategy, ...] = ("rolling", "blue-green", "canary", "shadow")
COLOURS: tuple[Colour, ...] = ("blue", "green")
TWO_RELEASES: frozenset[str] = frozenset({"blue-green", "canary", "shadow"})

PORT = 8080
PRESTOP_S = 10
DRAIN_TIMEOUT_S = 25
GRACE_MARGIN_S = 5
REQUEST_TIMEOUT_MS = 10_000
MAX_BODY_BYTES = 8 * 1024 * 1024
ROUTE_TIMEOUT_MARGIN_MS = 1_000
STARTUP_BUDGET_S = 600
"""How long a pod may take to load its models before the kubelet restarts it (a GPU node
pulling a large image and artifacts from S3 takes minutes)."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MODEL_URI = re.compile(
    r"^models:/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_-]+))$"
)
_IMAGE = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


def termination_grace_s(prestop_s: int = PRESTOP_S, drain_s: int = DRAIN_TIMEOUT_S) -> int:
    """The pod's ``terminationGracePeriodSeconds``: preStop + drain + margin."""
    return prestop_s + drain_s + GRACE_MARGIN_S


def route_timeout_ms(request_timeout_ms: int = REQUEST_TIMEOUT_MS) -> int:
    """The gateway route's timeout: just above the service's own request deadline, so the
    service answers 504 itself and the gateway never cuts an answer in flight."""
    return request_timeout_ms + ROUTE_TIMEOUT_MARGIN_MS


def model_uri_problem(uri: str, *, allow_alias: bool) -> str | None:
    """Why ``uri`` cannot be served (``None`` when it can)."""
    found = _MODEL_URI.match(uri) if isinstance(uri, str) else None
    if not found:
        return "must be models:/NAME/VERSION (or models:/NAME@ALIAS where aliases are allowed)"
    if found.group("alias") and not allow_alias:
        return "is an alias; pin a version (models:/NAME/VERSION): aliases are not allowed here"
    return None


@dataclass(frozen=True)
class Release:
    """One of the two releases of a two-release strategy; a field left ``None`` takes the
    service-level value."""

    image: pulumi.Input[str] | None = None
    """Image by digest (``repository@sha256:...``). Default the service's image."""
    models: Mapping[str, str] | None = None
    """Model name -> ``models:/`` URI. Default the service's models."""


@dataclass(frozen=True)
class Rollout:
    """How a new release replaces the running one."""

    strategy: Strategy = "rolling"
    """``rolling`` (one Deployment, surge one, never unavailable), ``blue-green`` (two
    releases, all traffic to ``active``), ``canary`` (``canary_weight`` % to the other
    release) or ``shadow`` (all to ``active``, ``mirror_percent`` % copied to the other,
    its answers discarded). Default ``rolling``."""
    active: Colour = "blue"
    """The release that takes the traffic. Default ``blue``."""
    blue: Release = field(default_factory=Release)
    """The blue release. Default the service-level image and models."""
    green: Release = field(default_factory=Release)
    """The green release. Default the service-level image and models."""
    canary_weight: int = 0
    """``canary``: share (0-100) of requests to the non-active release. Default 0."""
    mirror_percent: int = 0
    """``shadow``: share (0-100) of requests copied to the non-active release. Default 0."""

    @property
    def idle(self) -> Colour:
        """The non-active release."""
        return "green" if self.active == "blue" else "blue"

    def colours(self) -> tuple[Colour, ...]:
        """The releases that run: the active one only under ``rolling``."""
        return COLOURS if self.strategy in TWO_RELEASES else (self.active,)

    def release(self, colour: Colour) -> Release:
        return self.blue if colour == "blue" else self.green

    def weights(self) -> dict[Colour, int]:
        """Traffic per running release, summing to 100."""
        if self.strategy == "canary":
            return {self.active: 100 - self.canary_weight, self.idle: self.canary_weight}
        if self.strategy in TWO_RELEASES:
            return {self.active: 100, self.idle: 0}
        return {self.active: 100}


@dataclass(frozen=True)
class Resources:
    """Per-pod requests and limits (Kubernetes quantities)."""

    cpu: str = "1"
    """CPU request. Default ``1``."""
    memory: str = "2Gi"
    """Memory request. Default ``2Gi``."""
    cpu_limit: str | None = None
    """CPU limit. Default none (CPU is compressible: throttling costs latency)."""
    memory_limit: str | None = None
    """Memory limit. Default the request (memory is not compressible)."""
    gpu: int = 0
    """``nvidia.com/gpu`` per pod (``gpu`` placement only, then at least 1). Default 0."""


@dataclass(frozen=True)
class Batching:
    """The service's batching flags (``--max-batch-size`` and the rest)."""

    max_batch_size: int = 64
    """Rows per batch, 1..4096. Default 64."""
    max_delay_ms: int = 5
    """Longest wait of the oldest queued request for a fuller batch, 0..10000. Default 5."""
    max_queue: int = 1024
    """Queued requests per model before 429, 1..1000000. Default 1024."""
    workers: int = 1
    """Batches in flight per model, 1..64. Default 1."""


@dataclass(frozen=True)
class JwtAuth:
    """Who may call the service: a JWT from ``issuer`` carrying one of ``audiences``."""

    issuer: str
    """The token issuer (``iss``), an https URL. Required."""
    jwks_uri: str
    """Where the issuer publishes its signing keys, an https URL. Required."""
    audiences: Sequence[str]
    """Accepted ``aud`` values, at least one. Required."""


@dataclass(frozen=True)
class RateLimit:
    """Envoy local rate limit, per gateway replica (a token bucket)."""

    requests_per_second: int = 200
    """Tokens added each second. Default 200."""
    burst: int = 400
    """Bucket size, at least ``requests_per_second``. Default 400."""


@dataclass(frozen=True)
class MlflowCredentials:
    """The registry user the pods authenticate as (MLflow's basic-auth)."""

    username: str
    """The user's name (not secret)."""
    password: pulumi.Input[str]
    """Its password, kept secret: it reaches the pods only through a Secret."""
    ready: pulumi.Resource | None = None
    """What makes the user in the registry (the server's user Job): the pods start after
    it. Default none."""


@dataclass(frozen=True)
class InferenceServiceArgs:
    """Inputs of :class:`~components.workloads.inference.InferenceService`."""

    namespace: str
    """The namespace the pods run in (created by the tenancy, not here). Required."""
    image: pulumi.Input[str]
    """The serving image by digest (``repository@sha256:...``). Required."""
    models: Mapping[str, str]
    """Model name -> ``models:/`` URI; the first is the default of ``/invocations``. Required."""
    auth: JwtAuth
    """The JWT the gateway requires on inference paths. Required."""
    mlflow_tracking_uri: pulumi.Input[str]
    """The in-cluster MLflow server (``MLFLOW_TRACKING_URI``). Required."""
    otlp_endpoint: pulumi.Input[str]
    """The OpenTelemetry collector's OTLP/HTTP address. Required."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider, for the pods' role. Required."""
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL. Required."""
    pool: str
    """The node pool (``mlplatform.io/pool``) the pods run on. Required."""
    placement: Placement = "spot"
    """``gpu`` (GPU limit, GPU taint tolerated), ``spot`` or ``system``. Default ``spot``."""
    resources: Resources = field(default_factory=Resources)
    """Requests and limits per pod. Default Resources()."""
    min_replicas: int = 2
    """Fewest pods per release (the autoscaler's floor), at least 1. Default 2."""
    max_replicas: int = 10
    """Most pods per release, at least ``min_replicas``. Default 10."""
    batching: Batching = field(default_factory=Batching)
    """Batching flags. Default Batching()."""
    rollout: Rollout = field(default_factory=Rollout)
    """Rollout strategy and releases. Default rolling."""
    rate_limit: RateLimit = field(default_factory=RateLimit)
    """Gateway rate limit of the service's routes. Default RateLimit()."""
    allow_model_aliases: bool = False
    """Accept ``models:/NAME@ALIAS`` (a moving target: a registry change redeploys nothing
    and two pods may serve different versions). Default False: versions only."""
    artifact_bucket_arn: pulumi.Input[str] | None = None
    """The MLflow artifact bucket the pods may read. Default none: the role gets no S3
    access (models then load only through the tracking server's artifact proxy)."""
    artifact_kms_key_arn: pulumi.Input[str] | None = None
    """The KMS key of that bucket (decrypt only). Default none."""
    mlflow_credentials: MlflowCredentials | None = None
    """The registry's read-only user, written to a Secret the pods read
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` from. Default none (a registry without
    authentication)."""
    gateway: str = f"{GATEWAY_NAMESPACE}/{GATEWAY_NAME}"
    """The Istio ingress ``Gateway`` as ``namespace/name``. Default the mesh's
    (``istio-ingress/ingress``)."""
    gateway_labels: Mapping[str, str] = field(default_factory=lambda: dict(GATEWAY_LABELS))
    """Labels of the gateway's pods (the edge policies' selector). Default the mesh's
    gateway (``istio-ingressgateway``)."""
    gateway_service_account: str = GATEWAY_SERVICE_ACCOUNT
    """The gateway pods' service account (their mTLS identity). Default the mesh's
    gateway's."""
    hosts: Sequence[str] = ("*",)
    """Host names the routes answer on. Default ``*`` (every host of the Gateway)."""
    prometheus_url: str = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    """Where the autoscaler reads the serving metrics. Default the platform's Prometheus."""
    cpu_target_percent: int = 70
    """CPU utilisation that adds pods whatever the queue says (the floor). Default 70."""
    queue_target: int = 16
    """Queued requests per pod above which pods are added. Default 16."""
    runbook_base_url: str = "https://github.com/mlplatform/mlplatform/blob/main/docs/runbooks"
    """Where the service's alerts' runbook links point. Default the project's docs."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the AWS resources. Default none."""


def _range(problems: list[Problem], name: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        problems.append(Problem(name, f"is outside {lo}..{hi}", value))


def _models_problems(field_name: str, models: Mapping[str, str], allow: bool) -> list[Problem]:
    problems: list[Problem] = []
    if not models:
        problems.append(Problem(field_name, "must name at least one model"))
    for name, uri in models.items():
        if not _MODEL_NAME.match(name):
            problems.append(
                Problem(f"{field_name}.{name}", "must be a model name ([A-Za-z0-9._-])", name)
            )
        why = model_uri_problem(uri, allow_alias=allow)
        if why:
            problems.append(Problem(f"{field_name}.{name}", why, uri))
    return problems


def _image_problems(field_name: str, image: object) -> list[Problem]:
    if isinstance(image, str) and not _IMAGE.match(image):
        return [Problem(field_name, "must be a repository@sha256:<64 hex> digest", image)]
    return []


def validate_inference_service_args(name: str, args: InferenceServiceArgs) -> list[Problem]:
    """Return every problem with service ``name`` and its ``args`` (empty when valid)."""
    problems: list[Problem] = []
    if not _DNS_LABEL.match(name) or len(name) > 40:
        problems.append(Problem("name", "must be a DNS label of at most 40 characters", name))
    problems += _models_problems("models", args.models, args.allow_model_aliases)
    problems += _image_problems("image", args.image)
    if args.placement not in PLACEMENTS:
        problems.append(
            Problem("placement", f"must be one of {', '.join(PLACEMENTS)}", args.placement)
        )
    res = args.resources
    for label, value in (
        ("cpu", res.cpu),
        ("memory", res.memory),
        ("cpu_limit", res.cpu_limit),
        ("memory_limit", res.memory_limit),
    ):
        if value is not None and not (isinstance(value, str) and _QUANTITY.match(value)):
            problems.append(
                Problem(f"resources.{label}", "must be a quantity like 500m or 2Gi", value)
            )
    _range(problems, "resources.gpu", res.gpu, 0, 8)
    if args.placement == "gpu" and res.gpu == 0:
        problems.append(Problem("resources.gpu", "must be at least 1 with placement gpu", res.gpu))
    if args.placement != "gpu" and res.gpu:
        problems.append(
            Problem("resources.gpu", f"must be 0 with placement {args.placement}", res.gpu)
        )
    _range(problems, "min_replicas", args.min_replicas, 1, 1000)
    _range(problems, "max_replicas", args.max_replicas, max(args.min_replicas, 1), 1000)
    batch = args.batching
    _range(problems, "batching.max_batch_size", batch.max_batch_size, 1, 4096)
    _range(problems, "batching.max_delay_ms", batch.max_delay_ms, 0, 10_000)
    _range(problems, "batching.max_queue", batch.max_queue, 1, 1_000_000)
    _range(problems, "batching.workers", batch.workers, 1, 64)
    problems += _rollout_problems(args)
    auth = args.auth
    for label, url in (("auth.issuer", auth.issuer), ("auth.jwks_uri", auth.jwks_uri)):
        if not (isinstance(url, str) and url.startswith("https://") and len(url) > 8):
            problems.append(Problem(label, "must be an https:// URL", url))
    if not auth.audiences or not all(isinstance(a, str) and a for a in auth.audiences):
        problems.append(
            Problem("auth.audiences", "must list at least one audience", auth.audiences)
        )
    limit = args.rate_limit
    _range(problems, "rate_limit.requests_per_second", limit.requests_per_second, 1, 1_000_000)
    _range(problems, "rate_limit.burst", limit.burst, max(limit.requests_per_second, 1), 10_000_000)
    if "/" not in args.gateway:
        problems.append(Problem("gateway", "must be namespace/name", args.gateway))
    _range(problems, "cpu_target_percent", args.cpu_target_percent, 10, 100)
    _range(problems, "queue_target", args.queue_target, 1, 100_000)
    return problems


def _rollout_problems(args: InferenceServiceArgs) -> list[Problem]:
    rollout = args.rollout
    problems: list[Problem] = []
    if rollout.strategy not in STRATEGIES:
        problems.append(
            Problem("rollout.strategy", f"must be one of {', '.join(STRATEGIES)}", rollout.strategy)
        )
    if rollout.active not in COLOURS:
        problems.append(Problem("rollout.active", "must be blue or green", rollout.active))
    _range(problems, "rollout.canary_weight", rollout.canary_weight, 0, 100)
    _range(problems, "rollout.mirror_percent", rollout.mirror_percent, 0, 100)
    for colour in COLOURS:
        release = rollout.release(colour)
        if release.models is not None:
            problems += _models_problems(
                f"rollout.{colour}.models", release.models, args.allow_model_aliases
            )
        problems += _image_problems(f"rollout.{colour}.image", release.image)
    return problems


def release_models(args: InferenceServiceArgs, colour: Colour) -> Mapping[str, str]:
    """The models release ``colour`` serves (the service's under ``rolling``)."""
    own = args.rollout.release(colour).models
    if args.rollout.strategy in TWO_RELEASES and own is not None:
        return own
    return args.models


def release_image(args: InferenceServiceArgs, colour: Colour) -> pulumi.Input[str]:
    """The image release ``colour`` runs (the service's under ``rolling``)."""
    own = args.rollout.release(colour).image
    if args.rollout.strategy in TWO_RELEASES and own is not None:
        return own
    return args.image


def startup_failure_threshold(period_s: int) -> int:
    """Startup probe failures allowed within ``STARTUP_BUDGET_S``."""
    return math.ceil(STARTUP_BUDGET_S / period_s)
