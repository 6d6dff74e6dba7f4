"""The stated causal graph of quality versus accuracy (Drenkow & Unberath 2025).

::

    content (source photograph) ──┐
    corruption type ──────────────┼──► image ──► IQA score (one node per metric)
    severity ─────────────────────┘        └───► task correctness (accuracy)

The image is a deterministic function of its causes and is not a column of the table (it is
*unobserved* for DoWhy). The corruption type and severity are set by the experiment, every item
is rendered under every condition, so no arrow enters them: they are randomised treatments and
content is not a confounder -- DoWhy identifies the effect with an empty backdoor set. A metric
can predict accuracy only through factors that reach both through the image.

Three views of the same graph:

* :func:`stated_graph` -- the full graph above (with the image node), for reports and GML;
* :func:`treatment_graph` -- one binary treatment "corruption c at severity s vs clean" for
  the DoWhy effect of one condition on one outcome;
* :func:`factor_graph` -- the image marginalised out (factors -> outcomes), the structural
  causal model that ``dowhy.gcm`` fits on observed columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import networkx as nx

FACTORS = ("content", "corruption", "severity")
IMAGE = "image"
TREATED = "treated"


def stated_graph(outcomes: Sequence[str]) -> nx.DiGraph:
    """factors -> image -> each outcome (accuracy and every metric)."""
    g = nx.DiGraph()
    for f in FACTORS:
        g.add_node(f, observed=True, role="factor")
    g.add_node(IMAGE, observed=False, role="image")
    for f in FACTORS:
        g.add_edge(f, IMAGE)
    for o in outcomes:
        g.add_node(o, observed=True, role="outcome")
        g.add_edge(IMAGE, o)
    return g


def treatment_graph(outcome: str) -> nx.DiGraph:
    """content -> image <- treated; image -> outcome (one condition vs clean)."""
    g = nx.DiGraph([("content", IMAGE), (TREATED, IMAGE), (IMAGE, outcome)])
    nx.set_node_attributes(g, {IMAGE: False}, "observed")
    return g


def factor_graph(outcomes: Sequence[str]) -> nx.DiGraph:
    """Every factor -> every outcome: the stated graph with the image marginalised out."""
    return nx.DiGraph([(f, o) for o in outcomes for f in FACTORS])


def write_gml(graph: nx.DiGraph, path: str | Path) -> Path:
    """The graph in GML (labels quoted; attributes as strings so any reader accepts them)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nx.write_gml(graph, path, stringizer=str)
    return path
