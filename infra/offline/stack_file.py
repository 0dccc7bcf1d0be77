"""The stack-file reader: ``Pulumi.yaml`` defaults merged with ``Pulumi.<stack>.yaml``.

``load_stack_config`` returns the config as the Pulumi engine would pass it to the
program: full keys (``mlplatform:azCount``) to strings, structured values JSON-encoded,
plus the names of the secret keys. ``secure:`` values cannot be decrypted offline: each
becomes the placeholder ``[secret:<key>]`` and is passed as a secret key.

Defaults come from ``Pulumi.yaml``'s config schema. A default for a top-level key
(``clusterName``, or an object such as ``nodeGroups: {default: {system: {...}}}``)
applies only when the stack does not set the key: the stack's value replaces it wholly.
A dotted key (``nodeGroups.gpu.minSize``) is a path into an object, as
``pulumi config set --path`` writes it, and fills that leaf when it is missing.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

DEFAULT_STACK = "dev"
_CHECKOUT = Path(__file__).resolve().parents[2]


class PlanInputError(ValueError):
    """A usage problem: unknown stack, unreadable or malformed project or stack file."""


@dataclass(frozen=True)
class StackConfig:
    """A stack's config as the engine passes it: full keys to strings, plus secret keys."""

    project: str
    stack: str
    values: dict[str, str]
    secret_keys: tuple[str, ...]


def find_root(start: Path | None = None) -> Path:
    """Return the directory holding ``Pulumi.yaml``: ``start`` (default: the working
    directory) or a parent of it, else the checkout this module lives in.

    Raises ``PlanInputError`` when none is found.
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents, _CHECKOUT):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise PlanInputError(f"no Pulumi.yaml in {here} or its parents; run from the project checkout")


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
        raise PlanInputError(f"{path}: must be a YAML mapping (key: value), not a list or scalar")
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
    as Pulumi resolves them. Call it for top-level keys before dotted ones (see
    ``apply_defaults``), so that a path fills the object default too."""
    namespace, _, name = key.partition(":")
    root, *path = name.split(".")
    top = f"{namespace}:{root}"
    if not path:
        # A copy: a dotted default filled in later must not change the schema's object.
        values.setdefault(top, copy.deepcopy(default))
        return
    node = values.setdefault(top, {})
    for part in path[:-1]:
        if not isinstance(node, dict):
            return  # not an object: config validation names the key
        node = cast(dict[str, Any], node).setdefault(part, {})
    if isinstance(node, dict):
        cast(dict[str, Any], node).setdefault(path[-1], default)


def apply_defaults(values: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Fill ``values`` (the stack's settings by full key) from the schema's ``defaults``.

    Top-level defaults go first: one applies only when the stack has no value for its
    key, so an object default never merges into a stack's object. Dotted defaults then
    fill missing leaves of whichever object is in place.
    """
    ordered = sorted(defaults.items(), key=lambda item: "." in item[0].partition(":")[2])
    for key, default in ordered:
        _apply_default(values, key, default)


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
            raise PlanInputError(
                f"{config_file}: config key {key!r} must look like 'ns:name' "
                "(e.g. mlplatform:azCount), with at most one ':'"
            )
        full = key if ":" in key else f"{project}:{key}"
        values[full] = _secure(full, value, secret)
    apply_defaults(values, defaults)
    encoded = {key: _encode(value) for key, value in values.items()}
    return StackConfig(project, stack, encoded, tuple(sorted(secret)))
