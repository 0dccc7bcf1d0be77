"""Pulumi's runtime internals the offline engine leans on: each imported here, so an SDK
upgrade that moves or changes one fails in this file first, and nowhere else uses them."""

from __future__ import annotations

import ast
import inspect
import re

from tests.offline_support import ROOT

ENGINE = ROOT / "infra" / "offline" / "engine.py"

# module -> the names the engine imports from it (a module imported whole: "*").
INTERNALS = {
    "google.protobuf.json_format": {"*"},
    "pulumi.output": {"Unknown"},
    "pulumi.runtime.settings": {"*"},
    "pulumi.runtime.mocks": {"MockMonitor"},
    "pulumi.runtime.rpc": {
        "UNKNOWN",
        "_special_output_value_sig",
        "_special_resource_sig",
        "_special_secret_sig",
        "_special_sig_key",
    },
    "pulumi.runtime.stack": {"run_pulumi_func"},
    "pulumi.runtime.sync_await": {"_sync_await"},
}

# Other files that use one of these modules, and why they may.
ELSEWHERE = {
    # The policy pack is published alone and cannot import infra; Unknown is its preview
    # sentinel (a public class of a public module).
    "policy/rules_base.py": {"pulumi.output"},
    # Builds preview inputs with the wire's unknown sentinel; owned by the policy tests.
    "tests/policy/test_policy_pack.py": {"pulumi.runtime.rpc"},
}


def test_each_internal_symbol_still_exists_with_the_shape_the_engine_needs() -> None:
    from google.protobuf import json_format
    from pulumi.output import Unknown
    from pulumi.runtime import settings
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

    assert callable(json_format.MessageToDict)
    assert isinstance(Unknown(), Unknown)
    assert callable(settings.ROOT.set) and hasattr(settings.SETTINGS, "outputs")
    assert callable(settings.get_root_resource)
    for method in ("RegisterResource", "make_urn", "Invoke"):
        assert callable(getattr(MockMonitor, method)), method
    assert list(inspect.signature(MockMonitor.make_urn).parameters) == [
        "self",
        "parent",
        "type_",
        "name",
    ]
    assert re.fullmatch(r"[0-9a-f-]{36}", UNKNOWN)
    for sig in (_special_sig_key, _special_secret_sig, _special_resource_sig):
        assert re.fullmatch(r"[0-9a-f]{32}", sig)
    assert re.fullmatch(r"[0-9a-f]{32}", _special_output_value_sig)
    assert inspect.iscoroutinefunction(run_pulumi_func)
    assert callable(_sync_await)


def _imports(path) -> dict[str, set[str]]:
    """{module: names} imported by one file (``import a.b`` and ``from a import b``)."""
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in INTERNALS:  # ``from pulumi.runtime import settings``
                    found.setdefault(full, set()).add("*")
                else:
                    found.setdefault(node.module, set()).add(alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, set()).add("*")
    return found


def test_this_file_covers_every_internal_the_engine_imports() -> None:
    engine = {m: names for m, names in _imports(ENGINE).items() if m in INTERNALS}
    assert engine == INTERNALS


def test_no_other_module_imports_them() -> None:
    here = ROOT / "tests" / "infra" / "offline" / "test_pulumi_internals.py"
    offenders: dict[str, set[str]] = {}
    for folder in ("infra", "components", "policy", "serving", "bench", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if path in (ENGINE, here):
                continue
            used = {m for m in _imports(path) if m in INTERNALS}
            allowed = ELSEWHERE.get(path.relative_to(ROOT).as_posix(), set())
            if used - allowed:
                offenders[path.relative_to(ROOT).as_posix()] = used - allowed
    assert offenders == {}, (
        "Pulumi internals outside infra/offline/engine.py: use pulumi.runtime's public names "
        "(Mocks, MockResourceArgs, MockCallArgs, set_mocks) or add what you need to the engine"
    )
