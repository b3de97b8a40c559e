"""The package's layers import one way: library ← commands ← apps (the CLI, `python -m phonegrade`, the training
script). The demo's page (phonegrade.demo) is library code: `phonegrade demo` and app.py both serve it.

The graph is read from the source (every import statement, those inside functions included), not from what a
run happens to import."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "phonegrade"
APPS = {"phonegrade.cli", "phonegrade.train", "phonegrade.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the phonegrade modules it imports (a name imported from a package counts as its submodule when
    there is one)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.startswith("phonegrade")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                if not base.startswith("phonegrade"):
                    continue
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer(module: str) -> str:
    if module in APPS:
        return "app"
    return "command" if module.startswith("phonegrade.commands.") else "library"


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 20  # the walk found the package
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = import_graph()
    graph["phonegrade.labels"] = graph["phonegrade.labels"] | {"phonegrade.training"}  # training imports labels
    assert find_cycle(graph) is not None


def test_the_library_never_imports_a_command_or_an_app_and_commands_never_import_each_other():
    wrong = []
    for module, targets in import_graph().items():
        for target in targets:
            if layer(module) == "library" and layer(target) != "library":
                wrong.append(f"library {module} imports {target}")
            if layer(module) == "command" and layer(target) != "library" and target != "phonegrade.commands":
                wrong.append(f"command {module} imports {target}")
    assert wrong == []


def test_the_package_never_imports_app_py():
    """app.py is a checkout's thin wrapper over phonegrade.demo; an installed wheel has no app.py."""
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            wrong += [f"{path.name} imports {name}" for name in names if name.split(".")[0] == "app"]
    assert wrong == []
