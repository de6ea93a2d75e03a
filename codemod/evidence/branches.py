"""Branches in the recorded forward code that could skip parameters but never ran.

A clean trace proves only what its iterations did. The recorder notes, per DDP instance,
the lines that ran in the forward of each module class of the model that is repo code
(`paths` in the evidence) and which attributes own trainable parameters. Here, with `ast`
only, each branch point of those forwards (and of the class's methods they call) is
checked: an arm that never ran on any rank and that would leave some of those attributes
unreached blocks `safe` when its condition can change during training (a random draw,
tensor values or shapes, state set from outside the class, a counter, an argument callers
pass). Conditions fixed by the model's own configuration are listed, never blocking;
`self.training` and friends never count. A condition that fits none of these is a risk.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from codemod.recorder._ddp_codemod_files import file_sha256

NEVER_CALLS = {
    "torch.is_grad_enabled",
    "torch.jit.is_scripting",
    "torch.jit.is_tracing",
    "torch.compiler.is_compiling",
    "torch._dynamo.is_compiling",
    "torch.onnx.is_in_onnx_export",
}
RANDOM_PREFIXES = ("random.", "np.random.", "numpy.random.", "torch.rand", "torch.bernoulli")
RANDOM_CALLS = {"torch.multinomial", "torch.normal", "random", "rand", "bernoulli"}
COUNTER_WORDS = ("iter", "epoch", "step", "count", "num_updates", "progress", "cur_")
SKIP_DIRS = {".git", ".ddp-codemod", "__pycache__", "node_modules", "site-packages", ".venv"}
MAX_REPO_FILES = 5000
MAX_FILE_BYTES = 2 << 20
_BUILTINS = frozenset(
    [
        "True",
        "False",
        "None",
        "len",
        "isinstance",
        "any",
        "all",
        "hasattr",
        "getattr",
        "int",
        "float",
        "bool",
        "min",
        "max",
        "abs",
        "sum",
        "type",
        "callable",
        "torch",
    ]
)
MAX_DEPTH = 4  # self.method() calls followed
# a forward run under these prepares no DDP reduction, so what its call passes skips nothing
NO_GRAD = {"torch.no_grad", "no_grad", "torch.inference_mode", "inference_mode"}
SET_GRAD = {"torch.set_grad_enabled", "set_grad_enabled"}


@dataclass(frozen=True)
class Branch:
    path: str
    line: int
    condition: str  # source text, one line
    skips: tuple[str, ...]  # attributes owning parameters that this arm leaves unreached
    why: str  # why the condition can (or cannot) change during training
    risky: bool

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "condition": self.condition,
            "skips": list(self.skips),
            "why": self.why,
        }


@dataclass(frozen=True)
class RepoFacts:
    """Attribute assignments and keyword arguments found in the repo's Python files."""

    # attr -> (path, line, enclosing class name or "", target is `self`)
    assigned: dict[str, tuple[tuple[str, int, str, bool], ...]]
    keywords: frozenset[str]  # passed by some call that runs with grad enabled
    # class name -> the names of its bases (every class of that name in the repo)
    bases: dict[str, frozenset[str]] = field(default_factory=dict)

    def related(self, names: Iterable[str]) -> frozenset[str]:
        """Classes whose methods can run on an instance of `names`: the classes, their
        subclasses in the repo, and every base of those (by name)."""
        down = set(names)
        grew = True
        while grew:
            more = {k for k, bs in self.bases.items() if k not in down and bs & down}
            grew = bool(more)
            down |= more
        up, todo = set(down), list(down)
        while todo:
            for base in self.bases.get(todo.pop(), ()):
                if base not in up:
                    up.add(base)
                    todo.append(base)
        return frozenset(up)


def _python_files(root: Path) -> Iterator[Path]:
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("venv"))
        for name in sorted(files):
            if name.endswith(".py"):
                count += 1
                if count > MAX_REPO_FILES:
                    return
                yield Path(folder) / name


class _Assignments(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.classes: list[str] = []
        self.found: list[tuple[str, tuple[str, int, str, bool]]] = []
        self.keywords: set[str] = set()
        self.bases: dict[str, set[str]] = {}
        self.no_grad = 0  # inside a `with torch.no_grad():` or a function decorated so

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        names = {_dotted(b).rsplit(".", 1)[-1] for b in node.bases} - {""}
        self.bases.setdefault(node.name, set()).update(names)
        self.classes.append(node.name)
        outer, self.no_grad = self.no_grad, 0
        self.generic_visit(node)
        self.no_grad = outer
        self.classes.pop()

    def _function(self, node: ast.AST, decorators: list[ast.expr]) -> None:
        outer = self.no_grad  # a function runs when it is called, not where it is defined
        self.no_grad = 1 if any(_no_grad(d) for d in decorators) else 0
        self.generic_visit(node)
        self.no_grad = outer

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node, node.decorator_list)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node, node.decorator_list)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, [])

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item)
        off = any(_no_grad(item.context_expr) for item in node.items)
        self.no_grad += off
        for stmt in node.body:
            self.visit(stmt)
        self.no_grad -= off

    visit_AsyncWith = visit_With

    def _target(self, target: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for item in target.elts:
                self._target(item)
        elif isinstance(target, ast.Attribute):
            is_self = isinstance(target.value, ast.Name) and target.value.id == "self"
            cls = self.classes[-1] if self.classes else ""
            self.found.append((target.attr, (self.rel, target.lineno, cls, is_self)))

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._target(node.target)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        for kw in node.keywords:
            if kw.arg and not self.no_grad:
                self.keywords.add(kw.arg)
        name = _dotted(node.func)
        if name == "setattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            attr = node.args[1].value
            if isinstance(attr, str):
                self.found.append((attr, (self.rel, node.lineno, "", False)))
        self.generic_visit(node)


def _no_grad(node: ast.AST) -> bool:
    """`torch.no_grad()`, `torch.inference_mode()`, `torch.set_grad_enabled(False)`."""
    func = node.func if isinstance(node, ast.Call) else node
    name = _dotted(func)
    if name in NO_GRAD:
        return not (
            isinstance(node, ast.Call)
            and name.endswith("inference_mode")
            and node.args
            and not (isinstance(node.args[0], ast.Constant) and node.args[0].value)
        )
    return (
        name in SET_GRAD
        and isinstance(node, ast.Call)
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value is False
    )


@lru_cache(maxsize=8)
def repo_facts(root: Path) -> RepoFacts:
    assigned: dict[str, list[tuple[str, int, str, bool]]] = {}
    keywords: set[str] = set()
    bases: dict[str, set[str]] = {}
    for path in _python_files(root):
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            tree = ast.parse(path.read_bytes())
        except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        visitor = _Assignments(path.relative_to(root).as_posix())
        try:
            visitor.visit(tree)
        except RecursionError:
            continue
        for attr, where in visitor.found:
            assigned.setdefault(attr, []).append(where)
        keywords |= visitor.keywords
        for name, names in visitor.bases.items():
            bases.setdefault(name, set()).update(names)
    return RepoFacts(
        {k: tuple(v) for k, v in assigned.items()},
        frozenset(keywords),
        {k: frozenset(v) for k, v in bases.items()},
    )


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _terminates(stmts: list[ast.stmt]) -> str:
    """ "return" / "loop" when the block always leaves by return/raise or continue/break."""
    if not stmts:
        return ""
    last = stmts[-1]
    if isinstance(last, (ast.Return, ast.Raise)):
        return "return"
    if isinstance(last, (ast.Continue, ast.Break)):
        return "loop"
    if isinstance(last, ast.If) and last.orelse:
        a, b = _terminates(last.body), _terminates(last.orelse)
        if a and b:
            return "return" if a == b == "return" else "loop"
    return ""


class _Class:
    """One recorded module class: its methods, own attributes and parameter attributes."""

    def __init__(self, node: ast.ClassDef, bases: list[ast.ClassDef], params: set[str]) -> None:
        self.node = node
        self.params = params
        self.methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.own: set[str] = set()  # attributes the class's own methods (or body) assign
        self.names = {node.name} | {b.name for b in bases}
        for klass in [*reversed(bases), node]:
            for item in klass.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.methods[item.name] = item
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    self.own.update(t.id for t in targets if isinstance(t, ast.Name))
        for method in self.methods.values():
            for sub in ast.walk(method):
                if (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.ctx, ast.Store)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == "self"
                ):
                    self.own.add(sub.attr)
        self._reach: dict[str, frozenset[str]] = {}
        self.aliases: dict[str, str] = {}  # local name -> parameter attribute it holds

    def alias(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """Local names bound to a parameter attribute: `for layer in self.layers:`,
        `for i, block in enumerate(self.blocks):`, `head = self.heads[k]`."""
        self.aliases = {}
        for sub in ast.walk(func):
            if isinstance(sub, (ast.For, ast.AsyncFor)):
                source, target = sub.iter, sub.target
                if isinstance(source, ast.Call) and _dotted(source.func) in ("enumerate", "zip"):
                    source = source.args[-1] if source.args else source
                    if isinstance(target, ast.Tuple) and target.elts:
                        target = target.elts[-1]
            elif isinstance(sub, ast.Assign) and len(sub.targets) == 1:
                source, target = sub.value, sub.targets[0]
            else:
                continue
            while isinstance(source, ast.Subscript):
                source = source.value
            if (
                isinstance(target, ast.Name)
                and isinstance(source, ast.Attribute)
                and isinstance(source.value, ast.Name)
                and source.value.id == "self"
                and source.attr in self.params
            ):
                self.aliases[target.id] = source.attr

    def reach(self, node: ast.AST | list[ast.stmt], depth: int = 0) -> frozenset[str]:
        """Parameter attributes `self.X` reached in `node`, through self.method() calls too."""
        nodes = node if isinstance(node, list) else [node]
        found: set[str] = set()
        for top in nodes:
            for sub in ast.walk(top):
                if isinstance(sub, ast.Name) and sub.id in self.aliases:
                    found.add(self.aliases[sub.id])
                    continue
                if not (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == "self"
                ):
                    continue
                if sub.attr in self.params:
                    found.add(sub.attr)
                elif sub.attr in self.methods and depth < MAX_DEPTH:
                    if sub.attr not in self._reach:
                        self._reach[sub.attr] = frozenset()  # recursion guard
                        body = self.methods[sub.attr].body
                        self._reach[sub.attr] = self.reach(body, depth + 1)
                    found |= self._reach[sub.attr]
        return frozenset(found)


class _Judge:
    """Classifies one condition: a risk (why), fixed by configuration, or never a risk."""

    def __init__(
        self, cls: _Class, func: ast.FunctionDef | ast.AsyncFunctionDef, facts: RepoFacts
    ) -> None:
        self.cls = cls
        self.facts = facts
        args = func.args
        positional = [*args.posonlyargs, *args.args]
        defaults = dict(zip([a.arg for a in positional][::-1], args.defaults[::-1]))
        defaults.update(
            (a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None
        )
        self.args = {a.arg for a in [*positional, *args.kwonlyargs]} - {"self"}
        for extra in (args.vararg, args.kwarg):
            if extra is not None:
                self.args.add(extra.arg)
        self.defaults = set(defaults)
        self.module_names: set[str] = set()
        # `self.X = ...` in a method of one of these can set X on this class's instances
        self.related = self.cls.names | facts.related(self.cls.names)

    def outside(self, attr: str) -> tuple[str, int] | None:
        """Where something other than this class's own methods assigns `attr`: any
        `obj.attr = ...`, and `self.attr = ...` outside a class. `self.attr = ...` in a method
        of a class that is no base or subclass of this one sets it on that class's instances."""
        for rel, line, klass, is_self in self.facts.assigned.get(attr, ()):
            if not is_self or not klass:
                return rel, line
        return None

    def hierarchy(self, attr: str) -> bool:
        """Some class whose methods run on this class's instances assigns `self.<attr>`."""
        return any(
            is_self and klass in self.related
            for _, _, klass, is_self in self.facts.assigned.get(attr, ())
        )

    def classify(self, test: ast.AST | None) -> tuple[str, str]:
        """("risk" | "config" | "never", why)."""
        if test is None:
            return "risk", "an exception"
        risks: list[str] = []
        configs: list[str] = []
        skip: set[int] = set()
        for sub in ast.walk(test):
            if id(sub) in skip:
                continue
            if isinstance(sub, ast.Call):
                name = _dotted(sub.func)
                if name in NEVER_CALLS:
                    skip.update(id(n) for n in ast.walk(sub))
                    continue
                if name.startswith(RANDOM_PREFIXES) or name in RANDOM_CALLS:
                    risks.append("a random draw")
                    skip.update(id(n) for n in ast.walk(sub))
                    continue
                if name == "hasattr" and len(sub.args) == 2:
                    target, attr = sub.args
                    if (
                        isinstance(target, ast.Name)
                        and target.id == "self"
                        and isinstance(attr, ast.Constant)
                        and isinstance(attr.value, str)
                    ):
                        skip.update(id(n) for n in ast.walk(sub))
                        self._attr(attr.value, risks, configs)
                        continue
            if (
                isinstance(sub, ast.Attribute)
                and isinstance(sub.value, ast.Name)
                and sub.value.id == "self"
            ):
                skip.add(id(sub.value))
                if sub.attr == "training":
                    continue
                self._attr(sub.attr, risks, configs)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                self._name(sub.id, risks, configs)
        if risks:
            return "risk", "; ".join(dict.fromkeys(risks))
        if configs:
            return "config", "; ".join(dict.fromkeys(configs))
        return "never", "not during training"

    def _attr(self, attr: str, risks: list[str], configs: list[str]) -> None:
        where = self.outside(attr)
        if where is not None:
            risks.append(f"`{attr}` is assigned outside the class ({where[0]}:{where[1]})")
        elif any(word in attr.lower() for word in COUNTER_WORDS):
            risks.append(f"a counter (`self.{attr}`)")
        elif attr in self.cls.own or attr in self.cls.params or attr in self.cls.methods:
            configs.append(f"`self.{attr}` is set by the class itself")
        elif self.hierarchy(attr):
            configs.append(f"`self.{attr}` is set by the class itself (or a base or subclass)")
        else:
            risks.append(f"`self.{attr}` is set nowhere the class shows")

    def _name(self, name: str, risks: list[str], configs: list[str]) -> None:
        if name in _BUILTINS:
            return
        if name in self.args:
            if name in self.defaults and name not in self.facts.keywords:
                configs.append(f"argument `{name}` is left at its default")
            elif name in self.defaults:
                risks.append(f"argument `{name}` is passed by some call")
            else:
                risks.append(f"tensor values or shapes (`{name}`)")
        elif any(word in name.lower() for word in COUNTER_WORDS):
            risks.append(f"a counter (`{name}`)")
        elif name in self.module_names:
            configs.append(f"module-level `{name}`")
        else:
            risks.append(f"a value computed in the forward (`{name}`)")


def _segment(text: str, node: ast.AST) -> str:
    source = ast.get_source_segment(text, node) or ast.dump(node)
    return " ".join(source.split())[:120]


class _Walker:
    def __init__(
        self,
        text: str,
        rel: str,
        cls: _Class,
        judge: _Judge,
        executed: set[int],
    ) -> None:
        self.text = text
        self.rel = rel
        self.cls = cls
        self.judge = judge
        self.executed = executed
        self.found: list[Branch] = []

    def cont(
        self, stmts: list[ast.stmt], after: frozenset[str], loop: frozenset[str]
    ) -> frozenset[str]:
        """Params reached running `stmts` and what follows them."""
        reached = self.cls.reach(stmts)
        end = _terminates(stmts)
        if end == "return":
            return reached
        if end == "loop":
            return reached | loop
        return reached | after

    def block(self, stmts: list[ast.stmt], after: frozenset[str], loop: frozenset[str]) -> None:
        for i, stmt in enumerate(stmts):
            rest = self.cont(stmts[i + 1 :], after, loop)
            self.stmt(stmt, rest, loop)

    def arm(
        self,
        line: int | None,
        header: str,
        condition: ast.AST | None,
        this: frozenset[str],
        other: frozenset[str],
    ) -> None:
        skips = other - this
        if not skips or (line is not None and line in self.executed):
            return
        kind, why = self.judge.classify(condition)
        if kind == "never":
            return
        self.found.append(
            Branch(
                self.rel,
                line if line is not None else getattr(condition, "lineno", 0),
                header,
                tuple(sorted(skips)),
                why,
                kind == "risk",
            )
        )

    def stmt(self, stmt: ast.stmt, rest: frozenset[str], loop: frozenset[str]) -> None:
        if isinstance(stmt, ast.If):
            body = self.cont(stmt.body, rest, loop)
            orelse = self.cont(stmt.orelse, rest, loop)
            words = "elif" if self._is_elif(stmt) else "if"
            header = f"{words} {_segment(self.text, stmt.test)}:"
            self.arm(stmt.body[0].lineno, header, stmt.test, body, orelse)
            first_else = stmt.orelse[0].lineno if stmt.orelse else None
            self.arm(first_else, f"{header} (when false)", stmt.test, orelse, body)
            self.expressions(stmt.test)
            self.block(stmt.body, rest, loop)
            self.block(stmt.orelse, rest, loop)
        elif isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
            self.expressions(stmt.iter if not isinstance(stmt, ast.While) else stmt.test)
            self.block(stmt.body, rest, rest)
            self.block(stmt.orelse, rest, loop)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            self.block(stmt.body, rest, loop)
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            tried = self.cont(stmt.body, rest, loop)
            for handler in stmt.handlers:  # type: ignore[attr-defined]
                caught = self.cont(handler.body, rest, loop)
                kind = _segment(self.text, handler.type) if handler.type else ""
                header = f"except {kind}:".replace("except :", "except:")
                self.arm(handler.body[0].lineno, header, None, caught, tried)
                self.block(handler.body, rest, loop)
            self.block(stmt.body, rest, loop)  # type: ignore[attr-defined]
            self.block(stmt.orelse, rest, loop)  # type: ignore[attr-defined]
            self.block(stmt.finalbody, rest, loop)  # type: ignore[attr-defined]
        else:
            self.expressions(stmt)

    def _is_elif(self, stmt: ast.If) -> bool:
        lines = self.text.splitlines()
        line = lines[stmt.lineno - 1] if 0 < stmt.lineno <= len(lines) else ""
        return line[stmt.col_offset :].startswith("elif")

    def expressions(self, node: ast.AST) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.IfExp):
                a, b = self.cls.reach(sub.body), self.cls.reach(sub.orelse)
                header = f"{_segment(self.text, sub)}"
                # an arm on the test's own line cannot be told apart by lines: unexercised
                la = sub.body.lineno if sub.body.lineno != sub.test.lineno else None
                lb = sub.orelse.lineno if sub.orelse.lineno != sub.test.lineno else None
                self.arm(la, header, sub.test, a, b)
                self.arm(lb, header, sub.test, b, a)


def _classes(tree: ast.Module) -> Iterator[tuple[str, ast.ClassDef]]:
    stack: list[tuple[str, ast.AST]] = [("", tree)]
    while stack:
        prefix, node = stack.pop()
        for item in getattr(node, "body", []):
            if isinstance(item, ast.ClassDef):
                name = f"{prefix}{item.name}"
                yield name, item
                stack.append((f"{name}.", item))
            elif isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                stack.append((f"{prefix}{item.name}.<locals>.", item))


def analyse_source(
    text: str,
    rel: str,
    modules: Iterable[dict[str, object]],
    executed: set[int],
    facts: RepoFacts,
) -> list[Branch]:
    """Unexercised branches of the recorded classes' forwards in one file (risky and not)."""
    tree = ast.parse(text)
    by_name = dict(_classes(tree))
    simple = {node.name: node for node in by_name.values()}
    module_names: set[str] = set()
    for item in tree.body:
        if isinstance(item, ast.Assign):
            module_names.update(t.id for t in item.targets if isinstance(t, ast.Name))
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            module_names.add(item.target.id)
        elif isinstance(item, (ast.Import, ast.ImportFrom)):
            module_names.update((a.asname or a.name).split(".")[0] for a in item.names)
    out: list[Branch] = []
    for entry in modules:
        qualname = entry.get("class")
        params = {p for p in entry.get("params", []) if isinstance(p, str)}  # type: ignore[union-attr]
        node = by_name.get(qualname) if isinstance(qualname, str) else None
        if node is None or not params:
            continue
        bases = [simple[b.id] for b in node.bases if isinstance(b, ast.Name) and b.id in simple]
        cls = _Class(node, bases, params)
        forward = cls.methods.get("forward")
        if forward is None:
            continue
        seen: set[str] = set()
        todo = [forward]
        while todo:
            func = todo.pop()
            if func.name in seen:
                continue
            seen.add(func.name)
            cls.alias(func)
            judge = _Judge(cls, func, facts)
            judge.module_names = module_names
            walker = _Walker(text, rel, cls, judge, executed)
            walker.block(func.body, frozenset(), frozenset())
            out.extend(walker.found)
            for sub in ast.walk(func):  # self.helper(...) methods it calls
                if (
                    isinstance(sub, ast.Attribute)
                    and isinstance(sub.value, ast.Name)
                    and sub.value.id == "self"
                    and sub.attr in cls.methods
                    and len(seen) < 32
                ):
                    todo.append(cls.methods[sub.attr])
    unique: dict[tuple[str, int, str], Branch] = {}
    for branch in out:
        unique.setdefault((branch.path, branch.line, branch.condition), branch)
    return sorted(unique.values(), key=lambda b: (b.path, b.line, b.condition))


@dataclass(frozen=True)
class Findings:
    risky: tuple[Branch, ...] = ()
    fixed: tuple[Branch, ...] = ()
    notes: tuple[str, ...] = ()  # why paths could not be judged (skipped, changed files)
    recorded: bool = False  # some instance had paths


def analyse(root: Path, paths: Iterable[dict[str, object]]) -> Findings:
    """What the `paths` evidence of every paired instance (every rank) leaves unexercised."""
    executed: dict[str, set[int]] = {}
    modules: dict[str, list[dict[str, object]]] = {}
    digests: dict[str, set[str]] = {}
    notes: list[str] = []
    recorded = False
    for data in paths:
        if not isinstance(data, dict):
            continue
        skipped = data.get("skipped")
        if isinstance(skipped, str):
            notes.append(skipped)
            continue
        recorded = True
        for rel, info in (data.get("files") or {}).items():  # type: ignore[union-attr]
            if isinstance(info, dict):
                lines = info.get("lines") or []
                executed.setdefault(rel, set()).update(x for x in lines if isinstance(x, int))
                if isinstance(info.get("sha256"), str):
                    digests.setdefault(rel, set()).add(info["sha256"])
        for rel, entries in (data.get("modules") or {}).items():  # type: ignore[union-attr]
            if isinstance(entries, list):
                modules.setdefault(rel, []).extend(e for e in entries if isinstance(e, dict))
    if not recorded:
        return Findings(notes=tuple(dict.fromkeys(notes)))
    facts = repo_facts(root)
    found: list[Branch] = []
    for rel in sorted(modules):
        path = root / rel
        current = file_sha256(str(path))
        if current is None or digests.get(rel, set()) - {current}:
            notes.append(f"{rel} changed since it was traced")
            continue
        try:
            text = path.read_text(encoding="utf-8")
            found.extend(analyse_source(text, rel, modules[rel], executed.get(rel, set()), facts))
        except (OSError, SyntaxError, ValueError, RecursionError, UnicodeDecodeError):
            notes.append(f"{rel} could not be read")
    return Findings(
        tuple(b for b in found if b.risky),
        tuple(b for b in found if not b.risky),
        tuple(dict.fromkeys(notes)),
        True,
    )


def describe(branches: Iterable[Branch], limit: int = 3) -> str:
    """`model.py:41 `if boxes.numel() == 0:` (skips box_head); ...`"""
    items = list(branches)
    shown = [f"{b.path}:{b.line} `{b.condition}` (skips {', '.join(b.skips)})" for b in items]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(shown[:limit]) + more


def headline(risky: Iterable[Branch]) -> str:
    """`2 branches that could skip parameters never ran: model.py:41 ...`: the line trace
    ends with and probe prints under its verdict."""
    items = list(risky)
    n = len(items)
    return (
        f"{n} branch{'es' if n != 1 else ''} that could skip parameters never ran: "
        f"{describe(items)}"
    )


def blind_spot(found: Findings) -> str | None:
    """Why part of the model's code was not judged (paths skipped: a compiled forward,
    another tracer; a file changed or unreadable), as a clause; None when all was."""
    if not found.notes:
        return None
    why = "; ".join(found.notes)
    what = "its code paths were not recorded"
    if found.recorded:
        what = "some of its code paths could not be judged"
    return f"{what} ({why}), so a branch that could skip parameters may never have run"


def blind_hint(verb: str) -> str:
    """What to do about code that was not seen (`verb`: trace, probe)."""
    return (
        f"{verb} again where paths can be recorded (no torch.compile, no other tracer), "
        "or allowlist the site"
    )


def hint(risky: Iterable[Branch], verb: str) -> str:
    """What to do about unexercised branches: run longer (`verb`: trace, probe) or allowlist."""
    it, they = ("it", "it") if len(list(risky)) == 1 else ("them", "they")
    return (
        f"{verb} long enough (or with data) to take {it}, or allowlist the site if {they} "
        "cannot run in training"
    )
