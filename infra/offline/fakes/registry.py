"""The fakes' registry: one function per type token, plus fallbacks by token prefix.

A provider module (``aws.py``, ``kubernetes.py``, ...) keeps one ``Registry`` and
registers a function for one or more exact tokens with ``@RESOURCES.register(token,
...)``, or for every token under a prefix that has no function of its own with
``@RESOURCES.fallback("aws:")``. ``PlatformMocks`` combines the registries and asks
``find``: the exact token first, else the longest registered prefix. A token registered
twice (in one registry or across combined ones) is a programming error and raises at
import time, so two answers for one type can never silently shadow each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

ACCOUNT_ID = "123456789012"
"""The AWS account every mocked ARN lives in."""

DEFAULT_REGION = "us-west-2"
"""The region used when the program's config does not set ``aws:region``."""


def hex_digest(seed: str, length: int) -> str:
    """Return ``length`` lowercase hex characters derived from ``seed`` (deterministic)."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class FakeResource:
    """What a resource fake is asked about: one registration, inputs as plain data."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    region: str
    account: str

    @property
    def digest(self) -> str:
        """32 hex characters derived from type and name only: the seed of every id, so
        the same resource gets the same answers run to run whatever its inputs."""
        return hex_digest(f"{self.type}::{self.name}", 32)


@dataclass(frozen=True)
class FakeCall:
    """What a data-source fake is asked about: one invoke, arguments as plain data."""

    token: str
    args: Mapping[str, Any]
    region: str
    account: str


ResourceFake = Callable[[FakeResource], dict[str, Any]]
"""Returns the computed outputs of one resource, including its ``id``."""

CallFake = Callable[[FakeCall], dict[str, Any]]
"""Returns the result of one data-source call."""

F = TypeVar("F", bound=Callable[..., dict[str, Any]])


class Registry(Generic[F]):
    """Fake functions by exact type token, plus fallbacks by token prefix.

    ``module`` names the file that owns the registry; error messages point there.
    """

    def __init__(self, module: str) -> None:
        self.module = module
        self._exact: dict[str, F] = {}
        self._prefixes: dict[str, F] = {}

    @property
    def tokens(self) -> frozenset[str]:
        """The tokens with a function of their own."""
        return frozenset(self._exact)

    @property
    def prefixes(self) -> frozenset[str]:
        """The prefixes with a fallback function."""
        return frozenset(self._prefixes)

    def register(self, *tokens: str) -> Callable[[F], F]:
        """Decorator: answer each of ``tokens`` with the decorated function.

        Raises ``ValueError`` when no token is given or a token already has a function.
        """
        if not tokens:
            raise ValueError(f"{self.module}: register() needs at least one type token")

        def decorate(fn: F) -> F:
            for token in tokens:
                self._add(self._exact, token, fn, "token")
            return fn

        return decorate

    def fallback(self, prefix: str) -> Callable[[F], F]:
        """Decorator: answer every token starting with ``prefix`` that has no function of
        its own (the longest matching prefix wins; ``""`` matches every token)."""

        def decorate(fn: F) -> F:
            self._add(self._prefixes, prefix, fn, "prefix")
            return fn

        return decorate

    def _add(self, table: dict[str, F], key: str, fn: F, kind: str) -> None:
        if key in table:
            raise ValueError(
                f"{self.module}: {kind} {key!r} is answered twice ({table[key].__name__} and "
                f"{fn.__name__}); keep one function per {kind}"
            )
        table[key] = fn

    def find(self, token: str) -> F | None:
        """Return the function for ``token``: its own, else the longest prefix's, else None."""
        exact = self._exact.get(token)
        if exact is not None:
            return exact
        matches = [p for p in self._prefixes if token.startswith(p)]
        return self._prefixes[max(matches, key=len)] if matches else None

    @classmethod
    def combine(cls, module: str, *registries: Registry[F]) -> Registry[F]:
        """Return one registry holding every token and prefix of ``registries``.

        Raises ``ValueError`` when two of them answer the same token or prefix.
        """
        combined: Registry[F] = cls(module)
        for registry in registries:
            for token, fn in registry._exact.items():
                combined._add(combined._exact, token, fn, "token")
            for prefix, fn in registry._prefixes.items():
                combined._add(combined._prefixes, prefix, fn, "prefix")
        return combined
