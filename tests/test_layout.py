"""The package's shape: no import cycles between modules, and frameworks that register
themselves, so a new framework is one module under codemod/sites/frameworks/."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import codemod
from codemod.sites import catalogue, frameworks

PACKAGE = Path(codemod.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """codemod modules that `path` imports, at any depth of the file, typing-only aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.If) and ast.unparse(stmt.test) == "TYPE_CHECKING"
        for node in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in known}


def test_no_import_cycles() -> None:
    files = {
        _module_name(p): p
        for p in PACKAGE.rglob("*.py")
        if "recorder" not in p.parts  # runs inside the traced program, on its own path
    }
    known = set(files)
    graph = {name: _imports(path, known) - {name} for name, path in files.items()}
    for name in graph:  # a package's __init__ is imported by its modules: not an edge back
        graph[name] = {d for d in graph[name] if not name.startswith(d + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError(
                    "import cycle: " + " -> ".join([*stack[stack.index(dep) :], dep])
                )
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_every_framework_module_registers_something() -> None:
    catalogue.load()
    before = {
        name: importlib.import_module(f"{frameworks.__name__}.{name}")
        for _, name, _ in pkgutil.iter_modules(frameworks.__path__)
    }
    assert {"torch", "lightning", "hf", "accelerate", "detectron2", "mmengine", "yacs"} <= set(
        before
    )
    registered = (
        {k for k, _ in catalogue._EXACT.items()}
        | {f"{p}.{n}" for p, n in catalogue._BY_PACKAGE}
        | set(catalogue._KEYWORDS)
    )
    assert "torch.nn.parallel.DistributedDataParallel" in registered
    assert "lightning.DDPStrategy" in registered
    assert {"strategy", "ddp_find_unused_parameters"} <= set(catalogue._KEYWORDS)
    assert catalogue._ASSIGNMENTS


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(b"class A(DistributedDataParallel):\n    pass\n", True, id="direct"),
        pytest.param(
            b"class A(\n    nn.parallel.DistributedDataParallel,\n):\n", True, id="multiline"
        ),
        pytest.param(
            b"from torch.nn.parallel import DistributedDataParallel as DDP\nclass A(DDP): ...\n",
            True,
            id="import-alias",
        ),
        pytest.param(
            b"from x import DistributedDataParallel\n"
            b"DDP = DistributedDataParallel\nclass A(DDP): ...\n",
            True,
            id="assign-alias",
        ),
        pytest.param(
            b"from torch.nn.parallel import DistributedDataParallel\nclass A(nn.Module): ...\n",
            False,
            id="other-base",
        ),
        pytest.param(b"model = DistributedDataParallel(model)\n", False, id="no-class"),
        pytest.param(b"class A(nn.Module):\n    pass\n", False, id="no-ddp-name"),
    ],
)
def test_subclass_candidates_are_decided_on_bytes(source: bytes, expected: bool) -> None:
    from codemod.sites.subclasses import may_define_subclass

    assert may_define_subclass(source, {b"DistributedDataParallel"}) is expected
