"""The plan as a DOT graph: every resource a node, dependencies as edges, components as
nested clusters, and text that a DOT parser accepts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from infra.offline import run_program
from infra.offline.graph import render_dot
from infra.offline.report import PlanResult
from tests.offline_support import DotCluster, DotGraph, options_program, parse_dot


def _cluster_of(graph: DotGraph, urn: str) -> DotCluster:
    return next(c for c in graph.clusters() if urn in c.nodes)


def test_graph_draws_components_as_nested_clusters_and_dependencies_as_edges(
    dev_plan: PlanResult,
) -> None:
    resources = dev_plan.run.resources
    graph = parse_dot(render_dot(resources, title="mlplatform-dev"))
    assert graph.name == "mlplatform-dev"
    assert set(graph.nodes) == {r.urn for r in resources}
    components = [r for r in resources if not r.custom]
    assert len(graph.clusters()) == len(components)
    for r in resources:
        assert graph.nodes[r.urn]["label"] == f"{r.type}\\n{r.name}"
        if r.parent is None:
            continue
        # A child sits in its parent component's cluster, a nested component in a
        # cluster nested there.
        parent_cluster = _cluster_of(graph, r.parent)
        if r.custom:
            assert r.urn in parent_cluster.nodes
        else:
            assert _cluster_of(graph, r.urn) in parent_cluster.subgraphs
    expected = {(r.urn, d) for r in resources for d in r.dependencies}
    assert set(graph.edges) == expected
    assert len(graph.edges) == len(expected)
    (cluster,) = dev_plan.run.by_type("aws:eks/cluster:Cluster")
    group = dev_plan.run.by_type("aws:eks/nodeGroup:NodeGroup")[0]
    assert (group.urn, cluster.urn) in graph.edges  # dependent -> dependency


def test_graph_quotes_names_and_draws_options_program() -> None:
    run = run_program(options_program, project="mlplatform", stack="dev", config={})
    odd = replace(run.resources[0], urn='urn:pulumi:dev::p::t::we"ird\\name', name='we"ird\\name')
    graph = parse_dot(render_dot([odd, *run.resources[1:]]))
    assert 'urn:pulumi:dev::p::t::we"ird\\name' in graph.nodes
    by_name = {r.name: r for r in run.resources}
    graph = parse_dot(render_dot(run.resources))
    assert (by_name["kept"].urn, by_name["first"].urn) in graph.edges
    (group,) = graph.clusters()
    assert group.nodes == [by_name["group"].urn, by_name["group-log"].urn]


@pytest.mark.parametrize(
    "text",
    [
        'digraph "g" { "a" -> "b";',  # unclosed
        'digraph "g" { "a [label="x"]; }',  # unbalanced quote
        'digraph "g" { "a" -> ; }',  # edge without a target
        'digraph "g" { "a"; "a"; }',  # a node twice
        'digraph "g" { subgraph cluster_0 { "a"; } } extra',
    ],
)
def test_the_dot_check_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="DOT"):
        parse_dot(text)
