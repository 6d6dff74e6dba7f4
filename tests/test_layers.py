"""Imports inside qbench run downward only: the layers of DESIGN.md, checked on the source.

studies and commands → reports → analyses (causal, leaderboard, explain.evaluate, marking's
audit and study, bench) → scorers, trainers and the engine (metrics, models, rankiqa, explain,
marking) → corrupt, data → utilities (errors, registry, stats, store, atomic, home, ...).
An import of a module in a higher layer is an error, wherever it sits in the file (a function-
local import still ties the lower package to the higher one). Lazy ``"module:attr"`` strings
in a registry are not imports: that is how a low registry names a higher implementation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "qbench"

# module prefix -> layer (the longest matching prefix wins); higher numbers sit higher
LAYERS = {
    "qbench.errors": 0, "qbench.registry": 0, "qbench.stats": 0, "qbench.atomic": 0,
    "qbench.home": 0, "qbench.device": 0, "qbench.faults": 0, "qbench.store": 0,
    "qbench.corrupt": 1, "qbench.data": 1,
    "qbench.metrics": 2, "qbench.models": 2, "qbench.rankiqa": 2, "qbench.explain": 2,
    "qbench.marking": 2, "qbench.engine": 2,
    "qbench.causal": 3, "qbench.leaderboard": 3, "qbench.explain.evaluate": 3,
    "qbench.marking.audit": 3, "qbench.marking.study": 3, "qbench.bench": 3,
    "qbench.preview": 3,
    "qbench.report": 4,
    "qbench.demo": 5, "qbench.doctor": 5, "qbench.study": 5, "qbench.cli": 5, "qbench": 5,
}
COMMAND_MODULE = "cli"  # a package's cli.py is a command: it sits at the top


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    if module.rsplit(".", 1)[-1] == COMMAND_MODULE:
        return LAYERS["qbench.cli"]
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def imported(tree: ast.AST) -> list[tuple[str, int]]:
    """Every qbench module a file imports (``from qbench import x`` counts as qbench.x)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("qbench")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.startswith("qbench"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                is_module = (ROOT.parent / sub.replace(".", "/")).with_suffix(".py").is_file() \
                    or (ROOT.parent / sub.replace(".", "/")).is_dir()
                out.append((sub if is_module else node.module, node.lineno))
    return out


def upward_edges(root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        src = module_name(path)
        for target, line in imported(ast.parse(path.read_text(), str(path))):
            if target == "qbench":
                continue
            if layer(target) > layer(src):
                bad.append(f"{path.relative_to(root.parent)}:{line}: {src} (layer "
                           f"{layer(src)}) imports {target} (layer {layer(target)})")
    return bad


def test_every_import_inside_qbench_runs_down_the_layers():
    bad = upward_edges()
    assert not bad, "imports that run up the layers:\n" + "\n".join(bad)


def test_the_layer_check_catches_a_deliberate_upward_import(tmp_path, monkeypatch):
    fake = tmp_path / "qbench"
    (fake / "data").mkdir(parents=True)
    (fake / "leaderboard").mkdir()
    (fake / "leaderboard" / "__init__.py").write_text("")
    (fake / "data" / "__init__.py").write_text("def f():\n    from qbench.leaderboard import x\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", fake)
    assert upward_edges(fake) and "qbench.data (layer 1) imports qbench.leaderboard" in \
        upward_edges(fake)[0]


@pytest.mark.parametrize("module,expected", [("qbench.explain.evaluate.suite", 3),
                                             ("qbench.explain.cam", 2),
                                             ("qbench.rankiqa.cli", 5), ("qbench.store", 0)])
def test_modules_sit_in_their_design_layer(module, expected):
    assert layer(module) == expected


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:3] if parts[:3] == ["qbench", "explain", "evaluate"] else parts[:2])


def test_packages_do_not_import_each_other_in_a_cycle():
    import networkx as nx

    graph = nx.DiGraph()
    for path in sorted(ROOT.rglob("*.py")):
        src = module_name(path)
        if src.rsplit(".", 1)[-1] == COMMAND_MODULE or layer(src) == LAYERS["qbench"]:
            continue  # commands and the package root may import anything below them
        for target, _ in imported(ast.parse(path.read_text(), str(path))):
            a, b = package_of(src), package_of(target)
            if target != "qbench" and a != b:
                graph.add_edge(a, b)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"package import cycles: {cycles}"
