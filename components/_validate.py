"""Problems with a component's arguments, and the one error type that reports them.

Each component owns its value rules in a ``validate_<component>_args(args)`` function that
returns a list of :class:`Problem`. A problem names the field (``cidr_block``,
``addon_versions.kube-proxy``) and keeps the offending value apart from the rule, so a
caller that knows the value is secret can leave it out before formatting
(``infra/config.py`` maps fields to stack keys and masks by key).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import pulumi

#: A five-field cron expression (minute, hour, day, month, weekday), as CronJob and
#: Velero schedules take it; the fields themselves are the scheduler's to check.
CRON = re.compile(r"^(\S+\s+){4}\S+$")


class _NoValue:
    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()
"""Marks a problem that is about a field as a whole, not about one value of it."""


@dataclass(frozen=True)
class Problem:
    """One broken rule: ``field`` (an Args field, dotted for a key inside a mapping), the
    ``value`` that broke it (or ``NO_VALUE``) and ``rule``, worded to follow the value:
    ``'10.0.0.0/8' must be a private IPv4 range /16 to /20``."""

    field: str
    rule: str
    value: Any = NO_VALUE

    def describe(self, *, show_value: bool = True) -> str:
        """Return ``<value> <rule>`` (or ``[secret] <rule>`` without ``show_value``)."""
        if self.value is NO_VALUE:
            return self.rule
        shown = repr(self.value) if show_value else "[secret]"
        return f"{shown} {self.rule}"

    def __str__(self) -> str:
        return f"{self.field}: {self.describe()}"


class ValidationError(ValueError, pulumi.RunError):
    """Invalid arguments or configuration; ``problems`` holds one line per broken rule.

    Both a ``ValueError`` (what a caller of a component expects) and a
    ``pulumi.RunError``, so that ``pulumi preview``/``up`` print the message alone, with no
    stack trace.
    """

    def __init__(self, subject: str, problems: Iterable[Problem | str]) -> None:
        self.subject = subject
        self.problems = [str(p) for p in problems]
        super().__init__(f"invalid {subject}: " + "; ".join(self.problems))


def raise_for(subject: str, problems: list[Problem]) -> None:
    """Raise :class:`ValidationError` for ``subject`` (e.g. ``NetworkArgs``) when
    ``problems`` is non-empty."""
    if problems:
        raise ValidationError(subject, problems)
