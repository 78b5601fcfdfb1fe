"""Guards on the package's shape: imports run down the layers (web → services → domain) and never in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "printlab"

#: What each layer must never import, at module level or inside a function.
FORBIDDEN = {
    "domain": ("printlab.services", "printlab.web", "printlab.models", "printlab.db", "flask", "sqlalchemy"),
    "services": ("printlab.web", "flask"),
}


def module_name(path: Path) -> str:
    parts = ["printlab", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) for every import in a file; `from x import y` counts y when it is a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # `if TYPE_CHECKING:` blocks and the like don't run imports at load time
        nodes = [node for node in nodes if isinstance(node, ast.Import | ast.ImportFrom)]
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}


def layer_violations(root: Path) -> list[str]:
    offenders = []
    for layer, forbidden in FORBIDDEN.items():
        for path in sorted((root / layer).rglob("*.py")):
            seen_lines = set()
            for line, name in imports(path):
                banned = any(name == banned or name.startswith(banned + ".") for banned in forbidden)
                if banned and line not in seen_lines:  # one report per import statement
                    seen_lines.add(line)
                    offenders.append(f"{path.relative_to(root)}:{line} imports {name}")
    return offenders


def test_imports_run_down_the_layers():
    assert layer_violations(PACKAGE) == []


@pytest.mark.parametrize(
    ("layer", "line"),
    [
        ("services", "from printlab.web.context import current_actor"),
        ("domain", "from printlab.services.errors import NotFound"),
        ("domain", "import printlab.web.app"),
        ("services", "def f():\n    from printlab.web import limits\n"),
    ],
)
def test_the_layer_guard_catches_an_upward_import(tmp_path, layer, line):
    """The guard itself can fail: a copy of the package with one upward import planted is caught."""
    module = tmp_path / layer / "planted.py"
    module.parent.mkdir(parents=True)
    module.write_text(f'"""Planted."""\n{line}\n')
    found = layer_violations(tmp_path)
    assert len(found) == 1 and found[0].startswith(f"{layer}/planted.py:"), found


def import_graph() -> dict[str, set[str]]:
    """Module-level imports between printlab's own modules (what runs when a module is loaded)."""
    modules = all_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {target for _, target in imports(path, top_level_only=True) if target in modules} - {
            name
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_itself_round_a_circle():
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_services_are_grouped_by_capability():
    """Only cross-cutting modules stay at the top of services/; the rest live in a capability package."""
    services = PACKAGE / "services"
    top = sorted(path.name for path in services.glob("*.py"))
    assert top == ["__init__.py", "errors.py", "leases.py", "sealing.py", "tasks.py"]
    for package in (path for path in services.iterdir() if path.is_dir() and path.name != "__pycache__"):
        init = package / "__init__.py"
        assert init.is_file(), f"{package.name} has no __init__.py"
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and "import" in docstring, f"{package.name}/__init__.py must say what it may import"
