"""Promote what one stack runs to another by editing the target's stack file.

``python -m infra.promote --from dev --to prod [--service NAME] [--model NAME]
[--dry-run] [--allow-schema-change] [--set-alias] [--summary FILE] [--project-dir DIR]``

For each service (or the one named) it reads the pins the source stack *runs*
(``infra.promotion``), resolves each model alias to the exact version in the MLflow
registry at ``MLFLOW_TRACKING_URI``, and refuses, one line per model, a version that

- does not exist, or is not ``READY``;
- lacks a tag the target stack requires (``inference.promotion.requiredTags``);
- has a signature whose inputs differ (added or removed) from the version it replaces,
  unless ``--allow-schema-change``.

When nothing is refused it writes the versions (and a pinned image digest) where the
target's next release goes, keeping every comment, order and quoting, and prints the
diff. A refusal writes nothing. ``--set-alias`` also points the registry alias named
after the target stack (``prod``) at each promoted version; ``--summary FILE`` writes the
diff and each version's registry facts (run, tags, metrics) as Markdown, for a pull
request's body. ``--dry-run`` prints the diff and changes nothing.

Exit status: 0 changed, 3 nothing to do, 1 refused, 2 usage or stack-file error.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from infra.promotion import ModelPin, Placement, StackFile, StackFileError, is_digest

ROOT = Path(__file__).resolve().parents[1]
CHANGED, REFUSED, USAGE, NOTHING = 0, 1, 2, 3


@dataclass(frozen=True)
class Facts:
    """What the registry says about one promoted version (for the pull request)."""

    model: str
    version: int
    run_id: str
    tags: dict[str, str]
    metrics: dict[str, float]


@dataclass
class Outcome:
    """A promotion's result: refusals, notes, the facts and aliases to set."""

    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: list[Facts] = field(default_factory=list)
    aliases: list[tuple[str, int]] = field(default_factory=list)


class Registry:
    """The MLflow registry checks a promotion needs (imports MLflow only when used)."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow import MlflowClient

        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._tracking_uri = tracking_uri

    def resolve(self, pin: ModelPin) -> int:
        """The version a pin names (an alias resolved now); raises ``LookupError``."""
        from mlflow.exceptions import MlflowException

        if pin.version is not None:
            return pin.version
        assert pin.alias is not None
        try:
            return int(self._client.get_model_version_by_alias(pin.name, pin.alias).version)
        except MlflowException:
            raise LookupError(f"{pin.name}: alias {pin.alias!r} does not exist") from None

    def facts(self, name: str, version: int) -> Facts | str:
        """The version's facts, or why it cannot be promoted (not found, not READY)."""
        from mlflow.exceptions import MlflowException

        try:
            found = self._client.get_model_version(name, str(version))
        except MlflowException:
            return f"{name} version {version} does not exist in the registry"
        if found.status != "READY":
            return f"{name} version {version} is {found.status}, not READY"
        metrics: dict[str, float] = {}
        if found.run_id:
            try:
                metrics = dict(self._client.get_run(found.run_id).data.metrics)
            except MlflowException:
                metrics = {}
        return Facts(name, version, found.run_id or "", dict(found.tags), metrics)

    def inputs(self, name: str, version: int) -> list[str] | None:
        """The signature's input names, or None for a model logged without one."""
        from mlflow.models import get_model_info

        with _tracking(self._tracking_uri):
            signature = get_model_info(f"models:/{name}/{version}").signature
        if signature is None or signature.inputs is None:
            return None
        return [str(input_name) for input_name in signature.inputs.input_names()]

    def alias_version(self, name: str, alias: str) -> int | None:
        """The version ``alias`` points at, or None."""
        try:
            return self.resolve(ModelPin(name, None, alias))
        except LookupError:
            return None

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``."""
        self._client.set_registered_model_alias(name, alias, str(version))


@contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """Point MLflow's tracking and registry URIs at ``uri`` for a block (``models:/``
    URIs resolve against the registry URI)."""
    import mlflow

    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])


def promote_service(
    registry: Registry,
    source: Placement,
    target: Placement,
    *,
    only_model: str | None,
    required_tags: dict[str, str],
    allow_schema_change: bool,
    outcome: Outcome,
) -> None:
    """Check and write one service's pins from ``source`` into ``target``."""
    models = [(key, pin) for key, pin in source.models() if only_model in (None, key)]
    if only_model is not None and not models:
        raise StackFileError(
            f"{source.describe()} in {source.file.path.name} has no model {only_model}"
        )
    for key, pin in models:
        checked = _check(
            registry, pin, target.model(key), required_tags, target, allow_schema_change
        )
        if isinstance(checked, str):
            outcome.refusals.append(checked)
            continue
        promoted = ModelPin(pin.name, checked.version, None)
        if target.model(key) != promoted:
            target.set_model(key, promoted)
        outcome.facts.append(checked)
    image = source.image()
    if not is_digest(image):
        outcome.notes.append(
            f"{source.describe()}: image {image!r} is not a pinned digest; not promoted"
        )
    elif target.image() != image:
        target.set_image(str(image))


def _check(
    registry: Registry,
    pin: ModelPin,
    replaced: ModelPin | None,
    required_tags: dict[str, str],
    target: Placement,
    allow_schema_change: bool,
) -> Facts | str:
    """The facts of the version ``pin`` names now, or the one-line reason it is refused."""
    try:
        version = registry.resolve(pin)
    except LookupError as error:
        return str(error)
    facts = registry.facts(pin.name, version)
    if isinstance(facts, str):
        return facts
    missing = [
        f"{tag}={value}" for tag, value in required_tags.items() if facts.tags.get(tag) != value
    ]
    if missing:
        return (
            f"{pin.name} version {version} lacks tag {', '.join(missing)} "
            f"(required by {target.file.where('promotion', 'requiredTags')})"
        )
    if replaced is None or allow_schema_change:
        return facts
    try:
        old_version = registry.resolve(replaced)
    except LookupError:
        return facts  # the pin it replaces names nothing: no inputs to compare with
    if old_version == version:
        return facts
    before, after = registry.inputs(replaced.name, old_version), registry.inputs(pin.name, version)
    if before is None or after is None or set(before) == set(after):
        return facts
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    return (
        f"{pin.name} version {version} changes the inputs of version {old_version} "
        f"(added {added}, removed {removed}); pass --allow-schema-change to promote it"
    )


def _diff(path: Path, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        f"a/{path.name}",
        f"b/{path.name}",
    )
    return "".join(lines)


def _summary(diff: str, outcome: Outcome, source: str, target: str) -> str:
    rows = [
        f"| {f.model} | {f.version} | `{f.run_id}` | "
        + ", ".join(f"{k}={v}" for k, v in sorted(f.tags.items()))
        + " | "
        + ", ".join(f"{k}={v:g}" for k, v in sorted(f.metrics.items()))
        + " |"
        for f in outcome.facts
    ]
    return "\n".join(
        [
            f"Promotes what `{source}` runs to `{target}`.",
            "",
            "| model | version | run | tags | metrics |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "```diff",
            diff.rstrip("\n"),
            "```",
            *[f"- {note}" for note in outcome.notes],
            "",
        ]
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.promote", description=(__doc__ or "").split("\n\n", 1)[0]
    )
    parser.add_argument("--from", dest="source", required=True, help="source stack (e.g. dev)")
    parser.add_argument("--to", dest="target", required=True, help="target stack (e.g. prod)")
    parser.add_argument("--service", help="promote only this service")
    parser.add_argument("--model", help="promote only this model (by its key in the stack file)")
    parser.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")
    parser.add_argument(
        "--allow-schema-change", action="store_true", help="promote a version whose inputs differ"
    )
    parser.add_argument(
        "--set-alias",
        action="store_true",
        help="point the registry alias named after the target stack at each promoted version",
    )
    parser.add_argument(
        "--summary", type=Path, help="write the diff and registry facts as Markdown here"
    )
    parser.add_argument(
        "--project-dir", type=Path, default=ROOT, help="where Pulumi.<stack>.yaml live"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a promotion; return the exit status (0 changed, 3 nothing, 1 refused, 2 error)."""
    args = _parser().parse_args(argv)  # exits 2 on usage errors
    try:
        return _run(args)
    except StackFileError as error:
        print(f"promote: {error}", file=sys.stderr)
        return USAGE


def _run(args: argparse.Namespace) -> int:
    if args.source == args.target:
        raise StackFileError(f"--from and --to are both {args.source!r}")
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        raise StackFileError("MLFLOW_TRACKING_URI is not set: it names the registry to check")
    source = StackFile(args.project_dir / f"Pulumi.{args.source}.yaml")
    target = StackFile(args.project_dir / f"Pulumi.{args.target}.yaml")
    services = [args.service] if args.service else source.service_names()
    if not services:
        raise StackFileError(f"{source.where('services')}: no services to promote")
    registry, outcome = Registry(uri), Outcome()
    required = target.required_tags()
    for name in services:
        promote_service(
            registry,
            source.running(name),
            target.target(name),
            only_model=args.model,
            required_tags=required,
            allow_schema_change=args.allow_schema_change,
            outcome=outcome,
        )
    for line in outcome.refusals:
        print(f"refused: {line}", file=sys.stderr)
    if outcome.refusals:
        return REFUSED
    after = target.dumps()
    diff = _diff(target.path, target.text, after)
    pending = [
        (f.model, f.version)
        for f in outcome.facts
        if args.set_alias and registry.alias_version(f.model, args.target) != f.version
    ]
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    if not diff and not pending:
        print(f"{target.path.name}: already runs what {args.source} runs; nothing to do")
        return NOTHING
    print(diff, end="")
    if args.summary:
        args.summary.write_text(_summary(diff, outcome, args.source, args.target))
    if args.dry_run:
        print("dry run: nothing written")
        return CHANGED
    if diff:
        target.path.write_text(after)
    for model, version in pending:
        registry.set_alias(model, args.target, version)
        print(f"alias {args.target} of {model} -> version {version}")
    return CHANGED


if __name__ == "__main__":
    sys.exit(main())
