"""``PlatformMocks``: the ``pulumi.runtime.Mocks`` that answers from the fakes' registries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from infra.offline.fakes import aws, calls, docker_build, kubernetes, providers, random
from infra.offline.fakes.registry import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    FakeCall,
    FakeResource,
    Registry,
    ResourceFake,
)

RESOURCES: Registry[ResourceFake] = Registry.combine(
    "infra/offline/fakes",
    aws.RESOURCES,
    docker_build.RESOURCES,
    kubernetes.RESOURCES,
    random.RESOURCES,
    providers.RESOURCES,
)
"""Every resource fake; ``providers``' catch-all answers tokens no provider module has."""


def _as_given(value: Any) -> Any:
    return value


class PlatformMocks(pulumi.runtime.Mocks):
    """Mocks returning deterministic, realistic outputs, looked up by type token.

    Every output is derived from the resource's type and name (a hash), so a plan is
    reproducible. Inputs are echoed back as outputs (secretness kept), over the computed
    properties the real provider would fill in. ``call`` answers the data sources of
    ``infra/offline/fakes/calls.py`` and raises ``NotImplementedError`` naming any other.

    ``plain`` turns the engine's values (secret wrappers, unknowns, floats for integers)
    into the plain data the fakes read; ``run_program`` passes the engine's decoder, and
    the default leaves values as given (for callers that pass plain data already).
    """

    def __init__(
        self,
        region: str = DEFAULT_REGION,
        account_id: str = ACCOUNT_ID,
        plain: Callable[[Any], Any] = _as_given,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self._plain = plain

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        """Return (physical id, outputs) for one resource registration."""
        fake = RESOURCES.find(args.typ)
        assert fake is not None, "the catch-all fallback answers every token"
        resource = FakeResource(
            type=args.typ,
            name=args.name,
            inputs=self._plain(dict(args.inputs)),
            region=self.region,
            account=self.account_id,
        )
        computed = fake(resource)
        resource_id = computed.pop("id", None)
        if args.resource_id:
            resource_id = args.resource_id
        return resource_id, self._echo(computed, args.inputs)

    def _echo(self, computed: dict[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Inputs over computed outputs, as a provider returns them. An object given in
        part (``metadata: {namespace: ml}``) keeps the computed fields it leaves out (the
        generated ``name`` and ``uid``); a secret input is echoed whole, secret."""
        state = dict(computed)
        for key, value in inputs.items():
            known = state.get(key)
            if isinstance(value, dict) and isinstance(known, dict) and self._is_object(value):
                state[key] = {**known, **value}
            else:
                state[key] = value
        return state

    def _is_object(self, value: dict[str, Any]) -> bool:
        """True for a plain object, False for the engine's wrapper of a secret value."""
        plain = self._plain(value)
        return isinstance(plain, dict) and plain.keys() == value.keys()

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        """Answer one data-source call; raise ``NotImplementedError`` for unknown tokens."""
        fake = calls.CALLS.find(args.token)
        if fake is None:
            raise NotImplementedError(
                f"the offline engine has no answer for data source {args.token!r}; "
                f"add a function for it to {calls.CALLS.module} "
                f"(@CALLS.register({args.token!r}))"
            )
        call = FakeCall(
            token=args.token,
            args=self._plain(dict(args.args)),
            region=self.region,
            account=self.account_id,
        )
        return fake(call), []
