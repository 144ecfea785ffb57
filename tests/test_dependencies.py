"""Dependencies one way (issue #15.3): no import cycles among the project's modules, function-level
imports included, and only tasks modules queue work (views and commands call them).

Static: the source is parsed, not imported, so an import hidden inside a function counts the
same as one at the top of the module.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kgschema", "graph", "nlp", "recommender", "kms")
ENQUEUE = {"delay", "apply_async", "send_task"}


def project_modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    mods = {}
    for pkg in PACKAGES:
        for path in (root / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


def import_graph(mods: dict[str, tuple[Path, bool]]) -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its source."""
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, (path, is_pkg) in mods.items():
        base = mod if is_pkg else mod.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(filter(None, (resolve(a.name) for a in node.names)))
            elif isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level:
                    pkg = base
                    for _ in range(node.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    target = pkg + ("." + node.module if node.module else "")
                for a in node.names:  # "from pkg import module" imports the module
                    sub = f"{target}.{a.name}"
                    deps.add(sub if sub in mods else resolve(target))
        deps.discard(None)
        deps.discard(mod)
        graph[mod] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_sees_a_function_level_cycle(tmp_path):
    (tmp_path / "kms").mkdir()
    (tmp_path / "kms" / "__init__.py").write_text("")
    (tmp_path / "kms" / "a.py").write_text("from . import b\n")
    (tmp_path / "kms" / "b.py").write_text("def f():\n    from kms.a import x\n")
    (tmp_path / "kms" / "c.py").write_text("import kms.a\n")
    assert cycles(import_graph(project_modules(tmp_path))) == [["kms.a", "kms.b"]]


def test_no_import_cycles():
    found = cycles(import_graph(project_modules()))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_only_tasks_modules_queue_work():
    """``.delay`` / ``.apply_async`` / ``send_task`` appear only in ``tasks.py`` modules: services do
    the work and return, entry points call the tasks module's queueing functions."""
    offenders = []
    for mod, (path, _) in project_modules().items():
        if path.name == "tasks.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ENQUEUE:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}()")
    assert not offenders, offenders


def test_graph_nlp_recommender_stay_free_of_django():
    graph = import_graph(project_modules())
    for mod, (path, _) in project_modules().items():
        if mod.split(".")[0] in ("kgschema", "graph", "nlp", "recommender"):
            assert not any(d.startswith("kms") for d in graph[mod]), (mod, graph[mod])
            text = path.read_text()
            assert "import django" not in text and "from django" not in text, mod
