"""The offline plan: the real program on Pulumi's mock engine, with the policy rules.

``python -m infra.plan --stack dev|prod [--config-file FILE] [--json]`` reads
``Pulumi.yaml`` (defaults from its config schema) and the stack file, runs the program on
the mock engine, evaluates every policy rule over every captured resource and prints the
resources, outputs and violations. Exit status: 0 no mandatory violation, 1 mandatory
violations, 2 bad config or usage (one line on stderr, no traceback).

``secure:`` values cannot be decrypted offline: each becomes the placeholder
``[secret:<key>]``, is passed as a secret config key and stays masked in the output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from infra.config import ConfigError
from infra.mocks import CapturedResource, ProgramRun, run_program

MASK = "[secret]"
DEFAULT_STACK = "dev"


class PlanInputError(ValueError):
    """A usage problem: unknown stack, unreadable or malformed project or stack file."""


@dataclass(frozen=True)
class StackConfig:
    """A stack's config as the engine passes it: full keys to strings, plus secret keys."""

    project: str
    stack: str
    values: dict[str, str]
    secret_keys: tuple[str, ...]


@dataclass(frozen=True)
class Violation:
    """One policy finding on one resource."""

    policy: str
    level: str
    urn: str
    message: str


@dataclass
class PlanResult:
    """What one plan captured: the program run, the config it ran with and the findings."""

    project: str
    stack: str
    run: ProgramRun
    violations: list[Violation] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the ``--json`` document, with secret inputs and outputs masked."""
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [
                {
                    "urn": r.urn,
                    "type": r.type,
                    "name": r.name,
                    "parent": r.parent,
                    "inputs": masked_inputs(r),
                }
                for r in self.run.resources
            ],
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


def find_root(start: Path | None = None) -> Path:
    """Return the directory holding ``Pulumi.yaml``: ``start`` (default: the working
    directory) or a parent of it, else the checkout this module lives in.

    Raises ``PlanInputError`` when none is found.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents, Path(__file__).resolve().parents[1]):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise PlanInputError(f"no Pulumi.yaml in {here} or its parents")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise PlanInputError(f"{path}: not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlanInputError(f"{path}: must be a YAML mapping")
    return cast(dict[str, Any], data)


def project_defaults(root: Path) -> tuple[str, dict[str, Any]]:
    """Return (project name, {full key: default}) from ``Pulumi.yaml``'s config schema."""
    project = _read_yaml(root / "Pulumi.yaml")
    name = project.get("name")
    if not isinstance(name, str) or not name:
        raise PlanInputError(f"{root / 'Pulumi.yaml'}: 'name' must be the project name")
    defaults: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(spec, dict):
            spec = cast(dict[str, Any], spec)
            if "default" in spec:
                defaults[full] = spec["default"]
            elif "value" in spec:
                defaults[full] = spec["value"]
        else:
            defaults[full] = spec
    return name, defaults


def known_stacks(root: Path) -> list[str]:
    """Return the stacks that have a ``Pulumi.<stack>.yaml`` file in ``root``."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def _secure(key: str, value: Any, secret: set[str]) -> Any:
    """Replace ``{secure: ...}`` values (at any depth) by a marked placeholder."""
    if isinstance(value, dict):
        mapping = cast(dict[str, Any], value)
        if set(mapping) == {"secure"}:
            secret.add(key)
            return f"[secret:{key}]"
        return {k: _secure(key, v, secret) for k, v in mapping.items()}
    if isinstance(value, list):
        return [_secure(key, v, secret) for v in cast(list[Any], value)]
    return value


def _encode(value: Any) -> str:
    """Encode one config value as the engine does: scalars as text, the rest as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None else str(value)


def _apply_default(values: dict[str, Any], key: str, default: Any) -> None:
    """Set ``default`` unless the stack sets ``key``; dotted names are paths into objects,
    as Pulumi resolves them."""
    namespace, _, name = key.partition(":")
    root, *path = name.split(".")
    top = f"{namespace}:{root}"
    if not path:
        values.setdefault(top, default)
        return
    node = values.setdefault(top, {})
    for part in path[:-1]:
        if not isinstance(node, dict):
            return  # not an object: config validation names the key
        node = cast(dict[str, Any], node).setdefault(part, {})
    if isinstance(node, dict):
        cast(dict[str, Any], node).setdefault(path[-1], default)


def load_stack_config(
    stack: str | None, config_file: Path | None = None, root: Path | None = None
) -> StackConfig:
    """Merge ``Pulumi.yaml`` defaults with a stack file into engine-ready config.

    The stack file is ``config_file`` or ``<root>/Pulumi.<stack>.yaml``. Without a stack
    name it comes from a ``Pulumi.<stack>.yaml`` file name, else ``dev``. Raises
    ``PlanInputError`` for an unknown stack or an unreadable or malformed file.
    """
    root = root or find_root()
    project, defaults = project_defaults(root)
    if config_file is None:
        stack = stack or DEFAULT_STACK
        stacks = known_stacks(root)
        if stack not in stacks:
            raise PlanInputError(
                f"unknown stack {stack!r}; allowed: {', '.join(stacks)} "
                "(or pass --config-file FILE)"
            )
        config_file = root / f"Pulumi.{stack}.yaml"
    elif stack is None:
        name = config_file.name
        is_stack_file = name.startswith("Pulumi.") and name.endswith(".yaml")
        stack = (name[len("Pulumi.") : -len(".yaml")] if is_stack_file else "") or DEFAULT_STACK
    document = _read_yaml(config_file)
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise PlanInputError(f"{config_file}: 'config' must be a mapping of keys to values")
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for key, value in cast(dict[Any, Any], raw).items():
        if not isinstance(key, str) or key.count(":") > 1 or key.startswith(":"):
            raise PlanInputError(f"{config_file}: config key {key!r} must look like 'ns:name'")
        full = key if ":" in key else f"{project}:{key}"
        values[full] = _secure(full, value, secret)
    for key, default in defaults.items():
        _apply_default(values, key, default)
    encoded = {key: _encode(value) for key, value in values.items()}
    return StackConfig(project, stack, encoded, tuple(sorted(secret)))


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


def run_plan(
    stack: str | None = None,
    config_file: Path | None = None,
    program: Callable[[], object] | None = None,
    root: Path | None = None,
) -> PlanResult:
    """Plan one stack offline and return what was captured and which policies it breaks.

    ``program`` defaults to the real one (``infra.program.program``); tests pass a
    deliberately unsafe one. Raises ``PlanInputError`` for usage problems and
    ``infra.config.ConfigError`` (or the program's own ``ValueError``) for bad values.
    """
    config = load_stack_config(stack, config_file, root)
    if program is None:
        from infra.program import program as real_program

        program = real_program
    run = run_program(
        program,
        project=config.project,
        stack=config.stack,
        config=config.values,
        secret_keys=config.secret_keys,
    )
    return PlanResult(config.project, config.stack, run, evaluate_policies(run))


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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plan command line; return the exit status (0, 1 or 2)."""
    parser = _Parser(prog="python -m infra.plan", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", help="stack name (a Pulumi.<stack>.yaml file), e.g. dev")
    parser.add_argument("--config-file", type=Path, help="stack file to plan instead")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    try:
        result = run_plan(args.stack, args.config_file)
    except (PlanInputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        # A component rejected a value the config checks let through: still bad input.
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=False, default=str))
    else:
        print(render_text(result))
    return exit_status(result)


if __name__ == "__main__":
    sys.exit(main())
