"""The catalog's kedro-viz layers form a chain kedro-viz can draw (issue #24, item 6).

kedro-viz orders layers along the data flow and disables its layer view on a cycle ("circular
dependency detected among layers"). Here every node of every registered pipeline must read from
layers no later than those it writes, in the data-engineering order below.
"""

from __future__ import annotations

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.startup import bootstrap_project
from kedro.io.catalog_config_resolver import CatalogConfigResolver

from tests.conftest import PROJECT_ROOT

ORDER = ["raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting"]


def layer_of(resolver: CatalogConfigResolver, name: str) -> str | None:
    config = resolver.resolve_pattern(name) or {}
    return ((config.get("metadata") or {}).get("kedro-viz") or {}).get("layer")


@pytest.fixture(scope="module")
def layer_edges() -> dict[tuple[str, str], list[str]]:
    """``{(input layer, output layer): [nodes]}`` over every registered pipeline."""
    bootstrap_project(PROJECT_ROOT)
    from precipdiff.pipeline_registry import register_pipelines

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="local",
                               config_patterns={"mlflow": ["mlflow*"]})
    resolver = CatalogConfigResolver(loader["catalog"])
    edges: dict[tuple[str, str], list[str]] = {}
    for pipe in register_pipelines().values():
        for node in pipe.nodes:
            ins = {layer_of(resolver, d) for d in node.inputs if not d.startswith("params")} - {None}
            outs = {layer_of(resolver, d) for d in node.outputs} - {None}
            for a in ins:
                for b in outs - {a}:
                    edges.setdefault((a, b), []).append(node.name)
    return edges


def test_every_layer_is_a_known_one(layer_edges):
    assert {layer for edge in layer_edges for layer in edge} <= set(ORDER)
    assert ("model_input", "models") in layer_edges and ("model_output", "reporting") in layer_edges  # really read


def test_layers_only_flow_forward(layer_edges):
    backward = {edge: nodes[:3] for edge, nodes in layer_edges.items() if ORDER.index(edge[0]) > ORDER.index(edge[1])}
    assert not backward, f"nodes reading a later layer than they write (kedro-viz sees a cycle): {backward}"
