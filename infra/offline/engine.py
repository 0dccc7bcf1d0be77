"""The recording mock engine: runs a Pulumi program offline and records every registration.

``run_program`` installs a fresh engine, runs a program against it and returns every
registered resource (custom and component, with camelCase inputs exactly as a CrossGuard
policy sees them, the parent URN, the dependencies and the resource options as the SDK
sent them) plus the stack outputs with their secretness preserved. The answers (ids,
computed outputs, data sources) come from ``infra.offline.fakes``.

This is the one module that touches Pulumi's runtime internals: the stock mock monitor,
the runtime settings, the stack runner, the synchronous awaiter, the wire format's
signature constants and protobuf's JSON conversion. Nothing else in the repository
imports them; ``tests/infra/offline/test_pulumi_internals.py`` imports each, so an SDK
upgrade that moves one fails there first (``pulumi`` is pinned in ``pyproject.toml``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.output import Unknown
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import (
    UNKNOWN,
    _special_output_value_sig,
    _special_resource_sig,
    _special_secret_sig,
    _special_sig_key,
)
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.offline.fakes import DEFAULT_REGION, PlatformMocks

__all__ = [
    "CapturedResource",
    "ProgramRun",
    "ensure_event_loop",
    "plain_value",
    "run_program",
]

_STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class CapturedResource:
    """One resource registration as the engine received it.

    ``inputs`` holds camelCase property names with secrets unwrapped (as a policy sees
    them); ``secret_inputs`` names the top-level inputs that were secret, so a printer can
    mask them. ``id`` and ``outputs`` let a reader link references between resources (a
    flow log's ``vpcId`` is the VPC's ``id``). ``parent`` is the parent URN, or None for
    resources parented to the root stack (which is not recorded).
    """

    urn: str
    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    custom: bool
    secret_inputs: frozenset[str] = field(default_factory=frozenset)
    id: str | None = None
    """The mocked physical id (custom resources), e.g. ``vpc-0a1b...``; None for components."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The mocked state: inputs plus computed properties (ids, ARNs), secrets unwrapped."""
    dependencies: frozenset[str] = field(default_factory=frozenset)
    """URNs this registration waits for (``depends_on`` expanded, plus every resource an
    input came from), as the engine records them for ordering creates and deletes."""
    protect: bool = False
    """``protect=True`` was set (directly or inherited from the parent)."""
    ignore_changes: tuple[str, ...] = ()
    """The ``ignore_changes`` property paths, as the SDK sent them (camelCase)."""
    provider: str | None = None
    """The explicit provider reference, ``<provider urn>::<provider id>``; None when the
    resource uses the default provider of its package (and for components)."""
    retain_on_delete: bool = False
    """``retain_on_delete=True`` was set: deleting it from the stack leaves it in the cloud."""
    aliases: tuple[dict[str, Any], ...] = ()
    """The aliases as sent: ``{"spec": {"type": ..., "name": ..., "parentUrn": ...}}`` or
    ``{"urn": ...}`` each, so a renamed resource can be checked to keep its old URN."""


@dataclass
class ProgramRun:
    """What one ``run_program`` call captured.

    ``outputs`` holds the resolved stack outputs (secrets in plain text: mask the names
    in ``secret_outputs`` before printing).
    """

    resources: list[CapturedResource]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    created_in_callbacks: list[str] = field(default_factory=list)
    """URNs of resources constructed after the program returned, i.e. inside an ``apply``
    or another callback: such resources are missing from previews and must not exist."""

    def by_type(self, type_token: str) -> list[CapturedResource]:
        """Return the captured resources of one type token, in registration order."""
        return [r for r in self.resources if r.type == type_token]

    def children_of(self, urn: str) -> list[CapturedResource]:
        """Return the resources whose parent is ``urn``, in registration order."""
        return [r for r in self.resources if r.parent == urn]


def plain_value(value: Any) -> tuple[Any, bool]:
    """Turn one engine value into plain JSON-like data; return (value, contained a secret).

    Accepts both the wire form (protobuf converted to JSON) and the SDK's deserialized
    form: secrets and output values are unwrapped, resource references become their URN,
    unknowns (previews) become None and integral numbers become ints.
    """
    if isinstance(value, dict):
        sig = value.get(_special_sig_key)
        if sig == _special_secret_sig:
            inner, _ = plain_value(value.get("value"))
            return inner, True
        if sig == _special_output_value_sig:
            inner, _ = plain_value(value.get("value"))
            return inner, bool(value.get("secret"))
        if sig == _special_resource_sig:
            return value.get("urn"), False
        out: dict[str, Any] = {}
        secret = False
        for key, item in value.items():
            out[key], item_secret = plain_value(item)
            secret = secret or item_secret
        return out, secret
    if isinstance(value, list):
        items = [plain_value(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    if isinstance(value, Unknown) or value == UNKNOWN:
        return None, False
    if isinstance(value, float) and value.is_integer():
        return int(value), False
    return value, False


def _plain(value: Any) -> Any:
    """``plain_value`` without the secret flag: what the fakes read."""
    return plain_value(value)[0]


class _RecordingMonitor(MockMonitor):
    """A MockMonitor that records each registration with its parent URN and options."""

    def __init__(self, mocks: pulumi.runtime.Mocks, *, project: str, stack: str) -> None:
        super().__init__(mocks)
        self.captured: list[CapturedResource] = []
        self.lock = threading.Lock()
        self.stack_urn: str | None = None
        self._stack = stack
        self._project = project

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """Build a URN as the real engine does: parent type chain without the root stack."""
        qualified = type_
        if parent and parent != self.stack_urn:
            # The full parent chain, as the real engine writes it (the stock mock keeps
            # only the last parent type).
            qualified = parent.split("::")[2] + "$" + type_
        return "urn:pulumi:" + "::".join([self._stack, self._project, qualified, name])

    def RegisterResource(self, request: Any) -> Any:
        """Record the registration, then let the stock mock monitor answer it."""
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == _STACK_TYPE:
            self.stack_urn = urn
            return super().RegisterResource(request)
        raw = json_format.MessageToDict(request.object)
        inputs: dict[str, Any] = {}
        secrets: set[str] = set()
        for key, value in raw.items():
            inputs[key], is_secret = plain_value(value)
            if is_secret:
                secrets.add(key)
        parent = request.parent or None
        if parent is not None and parent == self.stack_urn:
            parent = None
        response = super().RegisterResource(request)
        outputs, _ = plain_value(json_format.MessageToDict(response.object))
        custom = bool(request.custom)
        captured = CapturedResource(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=parent,
            inputs=inputs,
            custom=custom,
            secret_inputs=frozenset(secrets),
            id=(response.id or None) if custom else None,
            outputs=outputs if custom else {},
            dependencies=frozenset(request.dependencies),
            protect=request.HasField("protect") and bool(request.protect),
            retain_on_delete=request.HasField("retainOnDelete") and bool(request.retainOnDelete),
            ignore_changes=tuple(request.ignoreChanges),
            provider=request.provider or None,
            aliases=tuple(json_format.MessageToDict(a) for a in request.aliases),
        )
        with self.lock:
            self.captured.append(captured)
        return response


def _resolve_output(value: Any) -> tuple[Any, bool]:
    """Resolve one exported value to (plain value, is secret)."""
    output = pulumi.Output.from_input(value)
    resolved = _sync_await(output.future())
    is_secret = bool(_sync_await(output.is_secret()))
    return resolved, is_secret


def ensure_event_loop() -> None:
    """Give the main thread a usable event loop for the mock engine.

    ``asyncio.run`` (used by other code in the same process, e.g. a test suite) leaves the
    thread with no loop, and Pulumi's runtime needs one.
    """
    policy = asyncio.get_event_loop_policy()
    try:
        loop = policy.get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        policy.set_event_loop(policy.new_event_loop())


def run_program(
    program: Callable[[], object],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: Sequence[str] = (),
    preview: bool = False,
) -> ProgramRun:
    """Run ``program`` on a fresh mock engine and return what it registered and exported.

    ``config`` maps full keys (``"mlplatform:azCount"``, ``"aws:region"``) to their string
    values, as a stack file holds them; ``secret_keys`` marks the secret ones. The region
    for mocked ARNs is ``config["aws:region"]`` or ``us-west-2``. Each call starts clean,
    so runs may follow each other in one process. An exception raised by the program (or
    inside one of its outputs) propagates unchanged.
    """
    ensure_event_loop()
    region = config.get("aws:region", DEFAULT_REGION)
    mocks = PlatformMocks(region=region, plain=_plain)
    monitor = _RecordingMonitor(mocks, project=project, stack=stack)
    # set_mocks only creates a root stack when none exists; a previous run's must go.
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    pulumi_settings.SETTINGS.outputs.clear()  # type: ignore[attr-defined]

    # Registrations reach the monitor from worker threads in whatever order their inputs
    # resolve; the constructors run in program order. Recording construction order (a
    # no-op transformation sees every resource) makes the captured list reproducible.
    constructed: list[pulumi.Resource] = []

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        constructed.append(args.resource)

    synchronous: list[int] = []

    def body() -> None:
        program()
        synchronous.append(len(constructed))

    pulumi.runtime.register_stack_transformation(record)
    _sync_await(run_pulumi_func(body))
    urns = [str(_sync_await(r.urn.future())) for r in constructed]
    order = {urn: i for i, urn in enumerate(urns)}

    root = pulumi_settings.get_root_resource()
    exported: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    for name, value in exported.items():
        resolved, is_secret = _resolve_output(value)
        outputs[name] = resolved
        if is_secret:
            secret_outputs.add(name)
    with monitor.lock:
        arrived = list(monitor.captured)
    resources = sorted(arrived, key=lambda r: order.get(r.urn, len(order)))
    return ProgramRun(
        resources=resources,
        outputs=outputs,
        secret_outputs=secret_outputs,
        created_in_callbacks=urns[synchronous[0] :] if synchronous else [],
    )
