"""The package layout stays what the README describes: one pipeline stage per package.

An AST walk over delg_tf/ and tools/ (no module is imported) collects every import, those inside
functions and under `if TYPE_CHECKING:` included, since each one is a dependency a reader must
follow.
"""

from __future__ import annotations

import ast
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# The order of the README's layout: a package imports only packages to its left.
ORDER = (
    "common",
    "data",
    "conversion",
    "models",
    "training",
    "export",
    "extraction",
    "retrieval",
    "evaluation",
    "visualization",
    "benchmark",
    "demo",
    "tools",
)
LIBRARY = ORDER[: ORDER.index("benchmark")]


def module_files(repo: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for delg_tf/ and tools/ (installed as delg_tools)."""
    modules = {}
    for folder, package in (("delg_tf", "delg_tf"), ("tools", "delg_tools")):
        for path in sorted((repo / folder).rglob("*.py")):
            parts = [package, *path.relative_to(repo / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """The modules of `known` that the file imports anywhere (a package counts as a module)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import mod` imports pkg and, when mod is a module, mod too.
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def import_graph(repo: pathlib.Path) -> dict[str, set[str]]:
    modules = module_files(repo)
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def layer(module: str) -> str | None:
    """The ORDER entry a module belongs to (None for the top-level `delg_tf` package)."""
    parts = module.split(".")
    if parts[0] == "delg_tools":
        return "tools"
    if len(parts) > 1 and parts[1] in ORDER:
        return parts[1]
    return None


def rightward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where the imported module sits to the importer's right."""
    found = []
    for importer, targets in graph.items():
        for target in targets:
            a, b = layer(importer), layer(target)
            if a is not None and b is not None and ORDER.index(b) > ORDER.index(a):
                found.append((importer, target))
    return sorted(found)


def package_lines(repo: pathlib.Path) -> dict[str, int]:
    """Lines per package of delg_tf/ (plus tools/), counted over their .py files."""
    lines = {}
    for name, path in module_files(repo).items():
        key = layer(name) or "delg_tf"
        lines[key] = lines.get(key, 0) + len(path.read_text(encoding="utf-8").splitlines())
    return lines


@pytest.fixture(scope="module")
def graph():
    return import_graph(REPO)


def test_the_walk_sees_imports_inside_functions_and_a_planted_cycle(tmp_path):
    # Known answer on a made-up tree: a <-> b through a function-level import, c -> a only,
    # and a relative import from a package __init__.
    pkg = tmp_path / "delg_tf" / "data"
    pkg.mkdir(parents=True)
    (tmp_path / "tools").mkdir()
    (tmp_path / "delg_tf" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from . import c\n")
    (pkg / "a.py").write_text("def f():\n    import delg_tf.data.b\n")
    (pkg / "b.py").write_text("import delg_tf.data.a\n")
    (pkg / "c.py").write_text("from delg_tf.data.a import f\nfrom delg_tf.demo import x\n")
    (tmp_path / "tools" / "t.py").write_text("from delg_tf.data import c\n")
    made_up = import_graph(tmp_path)
    assert made_up["delg_tf.data.a"] == {"delg_tf.data.b"}
    assert made_up["delg_tf.data"] == {"delg_tf.data.c"}
    assert made_up["delg_tools.t"] == {"delg_tf.data", "delg_tf.data.c"}
    assert cycles(made_up) == [["delg_tf.data.a", "delg_tf.data.b"]]
    assert rightward_imports({"delg_tf.data.c": {"delg_tf.demo.x"}}) == [
        ("delg_tf.data.c", "delg_tf.demo.x")
    ]
    assert rightward_imports({"delg_tf.demo.x": {"delg_tf.data.c"}}) == []


def test_the_walk_finds_the_real_modules(graph):
    # A walk that found nothing would pass every check below.
    assert "delg_tools.train" in graph and "delg_tf.models.delg_model" in graph
    assert "delg_tf.training.checkpointing" in graph["delg_tf.training.trainer"]


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def test_every_package_imports_only_leftwards(graph):
    assert rightward_imports(graph) == []


def test_every_module_sits_in_a_known_package(graph):
    assert sorted(m for m in graph if layer(m) is None) == ["delg_tf"]


def test_benchmark_and_synthetic_code_sit_in_their_wings():
    for folder, _, files in os.walk(REPO / "delg_tf"):
        relative = pathlib.Path(folder).relative_to(REPO / "delg_tf").parts
        for file in files:
            if file.endswith("_benchmark.py"):
                assert relative[:1] == ("benchmark",), f"{folder}/{file}"
            if "synthetic" in file and file.endswith(".py"):
                assert relative[:1] == ("demo",), f"{folder}/{file}"


def test_no_library_package_holds_more_than_15_percent_of_the_lines():
    lines = package_lines(REPO)
    total = sum(lines.values())
    biggest = max(LIBRARY, key=lambda name: lines.get(name, 0))
    assert lines[biggest] <= 0.15 * total, (biggest, lines[biggest], total)
