"""Helpers shared by the offline-engine and plan tests: the checkout, the plan command,
reading its JSON document, and a small DOT parser to check ``--graph`` output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
"""The checkout (holds ``Pulumi.yaml``)."""


def plan_subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m infra.plan ARGS`` from the checkout, without inherited PULUMI_* vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "infra.plan", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def of_type(document: dict[str, Any], type_token: str) -> list[dict[str, Any]]:
    """The resources of one type in a plan's JSON document, in registration order."""
    return [r for r in document["resources"] if r["type"] == type_token]


# --- DOT ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<quoted>"(?:[^"\\]|\\.)*")|(?P<arrow>->)|(?P<punct>[{}\[\]=;,])'
    r"|(?P<id>[A-Za-z_][A-Za-z0-9_]*|-?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)))",
    re.DOTALL,
)


@dataclass
class DotCluster:
    """One ``subgraph``: its id, the nodes declared directly in it, nested subgraphs."""

    name: str
    nodes: list[str] = field(default_factory=list)
    subgraphs: list[DotCluster] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class DotGraph:
    """A parsed ``digraph``: node attributes by id, edges in order, the top-level scope."""

    name: str
    nodes: dict[str, dict[str, str]]
    edges: list[tuple[str, str]]
    root: DotCluster

    def clusters(self) -> list[DotCluster]:
        """Every subgraph, depth first."""
        out: list[DotCluster] = []
        stack = list(reversed(self.root.subgraphs))
        while stack:
            cluster = stack.pop()
            out.append(cluster)
            stack.extend(reversed(cluster.subgraphs))
        return out


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"DOT: cannot read at offset {pos}: {text[pos : pos + 40]!r}")
        out.append(match.group().strip())
        pos = match.end()
    return out


def _unquote(token: str) -> str:
    if token.startswith('"'):
        return re.sub(r'\\(["\\])', r"\1", token[1:-1])
    return token


class _DotParser:
    """Recursive descent over the DOT grammar subset a digraph of nodes, edges, attribute
    statements and nested subgraphs uses; anything else raises ``ValueError``."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.nodes: dict[str, dict[str, str]] = {}
        self.edges: list[tuple[str, str]] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(
                f"DOT: expected {expected or 'a token'} at token {self.pos}, got {token!r}"
            )
        self.pos += 1
        return token

    def ident(self) -> str:
        token = self.take()
        if token in "{}[]=;," or token == "->":
            raise ValueError(f"DOT: expected an id at token {self.pos - 1}, got {token!r}")
        return _unquote(token)

    def attrs(self) -> dict[str, str]:
        out: dict[str, str] = {}
        self.take("[")
        while self.peek() != "]":
            key = self.ident()
            self.take("=")
            out[key] = self.ident()
            if self.peek() in (",", ";"):
                self.take()
        self.take("]")
        return out

    def graph(self) -> DotGraph:
        self.take("digraph")
        name = self.ident() if self.peek() != "{" else ""
        root = DotCluster(name)
        self.body(root)
        if self.peek() is not None:
            raise ValueError(f"DOT: text after the closing brace: {self.peek()!r}")
        return DotGraph(name, self.nodes, self.edges, root)

    def body(self, scope: DotCluster) -> None:
        self.take("{")
        while self.peek() != "}":
            self.statement(scope)
            if self.peek() == ";":
                self.take()
        self.take("}")

    def statement(self, scope: DotCluster) -> None:
        token = self.peek()
        if token == "subgraph":
            self.take()
            cluster = DotCluster(self.ident() if self.peek() != "{" else "")
            scope.subgraphs.append(cluster)
            self.body(cluster)
            return
        if token in ("node", "edge", "graph"):
            self.take()
            self.attrs()
            return
        first = self.ident()
        if self.peek() == "=":
            self.take()
            scope.attrs[first] = self.ident()
        elif self.peek() == "->":
            self.take()
            second = self.ident()
            self.edges.append((first, second))
            if self.peek() == "[":
                self.attrs()
        else:
            if first in self.nodes:
                raise ValueError(f"DOT: node {first!r} declared twice")
            self.nodes[first] = self.attrs() if self.peek() == "[" else {}
            scope.nodes.append(first)


def parse_dot(text: str) -> DotGraph:
    """Parse ``text`` as a DOT digraph (the subset ``--graph`` writes); raise ``ValueError``
    on anything malformed: unbalanced braces, a bad quote, a stray token."""
    return _DotParser(text).graph()


# --- programs -------------------------------------------------------------------------


def options_program() -> None:
    """A program using every recorded resource option: ``protect``, ``ignore_changes``,
    an explicit provider, ``depends_on``, an input dependency, and an inherited
    ``protect`` through a component."""
    import pulumi
    import pulumi_aws as aws

    first = aws.s3.Bucket("first")
    east = aws.Provider("east", region="us-east-1")
    aws.s3.Bucket(
        "kept",
        tags={"team": "ml"},
        opts=pulumi.ResourceOptions(
            protect=True, ignore_changes=["tags"], provider=east, depends_on=[first]
        ),
    )
    aws.s3.BucketPolicy("policy", bucket=first.bucket, policy="{}")
    group = pulumi.ComponentResource(
        "mlplatform:test:Group", "group", None, pulumi.ResourceOptions(protect=True)
    )
    aws.cloudwatch.LogGroup("group-log", opts=pulumi.ResourceOptions(parent=group))
