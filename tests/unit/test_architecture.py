"""The house rules of docs/architecture.md, read from the source (every import statement,
those inside functions too, for a lazy import is still a dependency):

- no file under src/deltaglider/ is over 600 lines, but the Cython binding;
- the layers: a module imports only its own layer and those below (storage, the codec,
  ``format`` and the cache never import the engine, the reports, the client or the CLI);
- the engine's stages call no stage above them (the read path schedules no deletion, cleanup
  does not call the write path: the face hands one stage's outcome to the next), and no stage
  imports the face;
- no import cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "deltaglider"
MAX_LINES = 600

#: Layers, lowest first: a module may import modules of its own layer and of those below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "leaves",
        (
            "deltaglider._version",
            "deltaglider.errors",
            "deltaglider._io",
            "deltaglider._spool",
            "deltaglider._executor",
            "deltaglider.progress",
            "deltaglider.config",
            "deltaglider._releases",
            "deltaglider.models",
            "deltaglider.types",
        ),
    ),
    (
        "format, cache, codec, storage",
        (
            "deltaglider.format",
            "deltaglider.cache",
            "deltaglider.codec",
            "deltaglider._codec",
            "deltaglider._xdelta3",
            "deltaglider.storage",
        ),
    ),
    ("engine", ("deltaglider._engine", "deltaglider.engine")),
    (
        "reports",
        (
            "deltaglider.stats",
            "deltaglider.analyze",
            "deltaglider._stats",
            "deltaglider._analyze",
            "deltaglider._reports",
        ),
    ),
    ("client", ("deltaglider._client", "deltaglider.client")),
    (
        "programs",
        ("deltaglider.cli", "deltaglider.app", "deltaglider.quickstart", "deltaglider.__main__"),
    ),
]

#: What each stage of the engine may import of the others (the face, ``engine``, wires them).
STAGES: dict[str, set[str]] = {
    "model": set(),
    "sources": {"model"},
    "verify": set(),
    "lookup": {"model"},
    "refs": {"model", "sources"},
    "write": {"model", "refs", "sources"},
    "read": {"model", "lookup", "refs", "verify"},
    "listing": {"model", "lookup"},
    "copy": {"model", "lookup", "refs"},
    "cleanup": {"model", "lookup", "refs"},
    "batch": {"model", "refs"},
}


def _modules() -> dict[str, Path | None]:
    found: dict[str, Path | None] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    for path in PACKAGE.rglob("*.pyx"):  # compiled: imports nothing of the package
        found[".".join(path.relative_to(SRC).with_suffix("").parts)] = None
    return found


MODULES = _modules()


def _statements(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, but those under ``if __name__ == "__main__":`` (code that runs
    only when the module is the program, never when it is imported)."""

    def main_guard(node: ast.AST) -> bool:
        test = getattr(node, "test", None)
        return (
            isinstance(node, ast.If)
            and isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
        )

    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if main_guard(node):
            stack.extend(getattr(node, "orelse", []))
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out: set[str] = set()
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                while name.startswith("deltaglider") and name not in MODULES:
                    name = name.rpartition(".")[0]
                if name.startswith("deltaglider"):
                    out.add(name)
            continue
        if node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if not target.startswith("deltaglider"):
            continue
        for alias in node.names:
            name = f"{target}.{alias.name}"
            out.add(name if name in MODULES else target)
    out.discard(module)
    return out


GRAPH = {m: (_imports(m, p) if p is not None else set()) for m, p in MODULES.items()}


def _layer(module: str) -> int:
    for number, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return number
    if module == "deltaglider":  # the package: exposes the client lazily
        return len(LAYERS) - 1
    raise AssertionError(f"{module}: in no layer of LAYERS (add it where it belongs)")


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_no_file_over_600_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in PACKAGE.rglob("*")
        if p.is_file()
        and p.suffix in (".py", ".pyi", ".pyx", ".h")
        and p.name != "_xdelta3.pyx"
        and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


def test_no_module_imports_a_layer_above_its_own() -> None:
    wrong = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in GRAPH.items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_engine_stages_import_only_what_they_stand_on(stage: str) -> None:
    module = f"deltaglider._engine.{stage}"
    assert module in MODULES
    others = {t.rsplit(".", 1)[1] for t in GRAPH[module] if t.startswith("deltaglider._engine.")}
    assert others <= STAGES[stage], f"{stage} imports {sorted(others - STAGES[stage])}"
    assert "deltaglider.engine" not in GRAPH[module], f"{stage} imports the face"


def test_every_engine_stage_is_listed() -> None:
    stages = {m.rsplit(".", 1)[1] for m in MODULES if m.startswith("deltaglider._engine.")}
    assert stages == set(STAGES)


def test_no_import_cycle() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
