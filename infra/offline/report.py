"""The offline plan's result: the program run, the policy findings and how to print them.

``run_plan`` reads a stack's config (``infra.offline.stack_file``), runs the program on
the mock engine (``infra.offline.engine``), evaluates every policy rule over every
captured resource and times both. ``PlanResult.to_json`` is the ``--json`` document
(DESIGN.md 3.1), ``render_text`` the readable plan; ``infra.offline.graph`` draws it.
Secret inputs and outputs are masked by key before anything is formatted.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config_keys import full_key
from infra.offline.engine import CapturedResource, ProgramRun, run_program
from infra.offline.stack_file import find_root, load_stack_config

if TYPE_CHECKING:
    from policy.rules import Level

MASK = "[secret]"
"""What a secret input or output prints as."""


@dataclass(frozen=True)
class Violation:
    """One policy finding on one resource."""

    policy: str
    level: Level
    urn: str
    message: str


@dataclass
class PlanResult:
    """What one plan captured: the program run, the config it ran with and the findings."""

    project: str
    stack: str
    run: ProgramRun
    violations: list[Violation] = field(default_factory=list)
    elapsed_s: float = 0.0
    """Seconds spent running the program and evaluating the policies."""

    def to_json(self) -> dict[str, Any]:
        """Return the ``--json`` document, with secret inputs and outputs masked."""
        return {
            "project": self.project,
            "stack": self.stack,
            "elapsed_s": round(self.elapsed_s, 3),
            "resources": [resource_json(r) for r in self.run.resources],
            "outputs": {
                key: MASK if key in self.run.secret_outputs else value
                for key, value in sorted(self.run.outputs.items())
            },
            "violations": [
                {"policy": v.policy, "level": v.level, "urn": v.urn, "message": v.message}
                for v in self.violations
            ],
        }


def masked_inputs(resource: CapturedResource) -> dict[str, Any]:
    """Return a resource's inputs with every secret top-level input replaced by ``[secret]``."""
    return {k: MASK if k in resource.secret_inputs else v for k, v in resource.inputs.items()}


def resource_json(resource: CapturedResource) -> dict[str, Any]:
    """Return one resource of the ``--json`` document (``id`` is None for components)."""
    return {
        "urn": resource.urn,
        "type": resource.type,
        "name": resource.name,
        "parent": resource.parent,
        "id": resource.id,
        "inputs": masked_inputs(resource),
        "dependencies": sorted(resource.dependencies),
        "protect": resource.protect,
        "ignoreChanges": list(resource.ignore_changes),
        "provider": resource.provider,
    }


def evaluate_policies(run: ProgramRun) -> list[Violation]:
    """Evaluate every policy rule over every captured resource (plain, unmasked inputs)."""
    from policy import rules

    triples = [(r.urn, r.type, r.inputs) for r in run.resources]
    aliases: dict[str, list[str]] = {}
    for r in run.resources:
        ids = [r.id, r.outputs.get("arn"), r.outputs.get("name")]
        aliases[r.urn] = [str(i) for i in ids if isinstance(i, str) and i]
    return [
        Violation(f.policy, f.level, urn, f.message) for urn, f in rules.evaluate(triples, aliases)
    ]


def running_version(
    stack: str, config_file: Path | None, previous_config: Path | None, root: Path | None
) -> str | None:
    """The Kubernetes version the stack runs now, as far as a plan can know it.

    ``previous_config`` (the stack file as deployed, e.g. the base branch's) when given;
    else, when ``config_file`` is another file, the stack's own ``Pulumi.<stack>.yaml``;
    else unknown (``None``).
    """
    if previous_config is None and config_file is not None:
        own = (root or find_root()) / f"Pulumi.{stack}.yaml"
        if own.is_file() and own.resolve() != config_file.resolve():
            previous_config = own
    if previous_config is None:
        return None
    values = load_stack_config(stack, previous_config, root).values
    return values.get(full_key("kubernetesVersion"))


def run_plan(
    stack: str | None = None,
    config_file: Path | None = None,
    program: Callable[[], object] | None = None,
    root: Path | None = None,
    previous_config: Path | None = None,
) -> PlanResult:
    """Plan one stack offline and return what was captured and which policies it breaks.

    ``program`` defaults to the real one (``infra.program.program``), told the version
    the stack runs now (see :func:`running_version`) so that an upgrade of more than one
    minor version is refused; tests pass a deliberately unsafe one. Raises
    ``PlanInputError`` for usage problems and ``infra.config.ConfigError`` (or the
    program's own ``ValueError``) for bad values.
    """
    config = load_stack_config(stack, config_file, root)
    if program is None:
        from infra.program import program as real_program

        previous = running_version(config.stack, config_file, previous_config, root)

        def planned() -> None:
            real_program(previous_kubernetes_version=previous)

        program = planned

    started = time.perf_counter()
    run = run_program(
        program,
        project=config.project,
        stack=config.stack,
        config=config.values,
        secret_keys=config.secret_keys,
    )
    violations = evaluate_policies(run)
    elapsed = time.perf_counter() - started
    return PlanResult(config.project, config.stack, run, violations, elapsed)


def exit_status(result: PlanResult) -> int:
    """Return 1 when any violation is mandatory, else 0."""
    return 1 if any(v.level == "mandatory" for v in result.violations) else 0


def render_text(result: PlanResult) -> str:
    """Return the readable plan: the resource tree, counts per type, outputs, violations."""
    lines = [f"Plan of stack {result.stack!r} (project {result.project!r}), offline"]
    resources = result.run.resources
    children: dict[str | None, list[CapturedResource]] = {}
    for r in resources:
        children.setdefault(r.parent, []).append(r)
    flagged = Counter(v.urn for v in result.violations)

    def walk(parent: str | None, depth: int) -> None:
        for r in children.get(parent, []):
            mark = f"  <- {flagged[r.urn]} finding(s)" if flagged[r.urn] else ""
            lines.append(f"{'  ' * (depth + 1)}{r.type}  {r.name}{mark}")
            walk(r.urn, depth + 1)

    walk(None, 0)
    counts = Counter(r.type for r in resources)
    lines += ["", f"Resources: {len(resources)}"]
    lines += [f"  {n:4d}  {t}" for t, n in sorted(counts.items())]
    lines += ["", "Outputs:"]
    for key, value in result.to_json()["outputs"].items():
        lines.append(f"  {key}: {json.dumps(value)}")
    mandatory = sum(v.level == "mandatory" for v in result.violations)
    lines += ["", f"Policy: {mandatory} mandatory, {len(result.violations) - mandatory} advisory"]
    for v in result.violations:
        lines.append(f"  [{v.level}] {v.policy}: {v.urn}")
        lines.append(f"      {v.message}")
    return "\n".join(lines)
