"""The offline plan command: the real program on Pulumi's mock engine, with the policy rules.

``python -m infra.plan --stack dev|prod [--config-file FILE] [--previous-config FILE]
[--json | --graph]`` reads
``Pulumi.yaml`` (defaults from its config schema) and the stack file, runs the program on
the mock engine, evaluates every policy rule over every captured resource and prints the
resources, outputs and violations: a readable tree by default, one JSON document with
``--json``, the dependency graph as Graphviz DOT with ``--graph``. Exit status: 0 no
mandatory violation, 1 mandatory violations, 2 bad config or usage (one line on stderr,
no traceback).

``secure:`` values cannot be decrypted offline: each becomes the placeholder
``[secret:<key>]``, is passed as a secret config key and stays masked in the output.
The work is done by ``infra.offline``; this module only parses, prints and exits.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from infra.config import ConfigError
from infra.offline.graph import render_dot
from infra.offline.report import exit_status, render_text, run_plan
from infra.offline.stack_file import PlanInputError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m infra.plan", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", help="stack name (a Pulumi.<stack>.yaml file), e.g. dev")
    parser.add_argument("--config-file", type=Path, help="stack file to plan instead")
    parser.add_argument(
        "--previous-config",
        type=Path,
        help="the stack file as deployed now (e.g. the base branch's), to check the "
        "Kubernetes upgrade step against; default: Pulumi.<stack>.yaml when --config-file "
        "names another file",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON document")
    output.add_argument(
        "--graph", action="store_true", help="print the dependency graph as Graphviz DOT"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plan command line; return the exit status (0, 1 or 2).

    Usage errors (unknown flag, ``--json`` with ``--graph``) exit 2 through argparse.
    """
    args = _parser().parse_args(argv)
    try:
        result = run_plan(args.stack, args.config_file, previous_config=args.previous_config)
    except (PlanInputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        # A component rejected a value the config checks let through: still bad input.
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    output: Any
    if args.json:
        output = json.dumps(result.to_json(), indent=2, sort_keys=False, default=str)
    elif args.graph:
        output = render_dot(result.run.resources, title=f"{result.project}-{result.stack}")
    else:
        output = render_text(result)
    print(output, end="" if args.graph else "\n")
    return exit_status(result)


if __name__ == "__main__":
    sys.exit(main())
