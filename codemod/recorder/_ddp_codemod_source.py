"""Source helpers shared by the recorder and the static side, so both name code alike.

The recorder runs inside the traced program (any Python from 3.8 on, stdlib only) and the
static side runs in ddp-codemod; evidence pairs with a site only when both compute the same
line spans, hashes and qualified names from the same file, so both call these functions.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import json
import os
import re
import time
import tokenize
from functools import lru_cache
from typing import Any, Sequence

MODULE_QUALNAME = "<module>"
FORMAT, VERSION = "ddp-codemod-evidence", 1  # what every evidence file says it is
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def read_source(path: str) -> str:
    """Decode a file the way Python does (PEP 263 cookie or BOM), without the BOM."""
    with open(path, "rb") as f:
        data = f.read()
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
    return text[1:] if text.startswith("\ufeff") else text


def source_lines(text: str) -> list[str]:
    """Split on \\r\\n, \\n and \\r like the tokenizer; line N is element N - 1."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def lines_sha256(lines: Sequence[str], line: int, end_line: int) -> str:
    """Hash of lines line..end_line (1-based, inclusive): detects an edited call or function."""
    return hashlib.sha256("\n".join(lines[line - 1 : end_line]).encode("utf-8")).hexdigest()


@lru_cache(maxsize=16)
def _tree(text: str) -> ast.Module:
    return ast.parse(text)


def _scope_name(node: ast.AST) -> str:
    return "<lambda>" if isinstance(node, ast.Lambda) else node.name  # type: ignore[attr-defined]


def _contains(node: ast.AST, line: int) -> bool:
    return node.lineno <= line <= (node.end_lineno or node.lineno)  # type: ignore[attr-defined]


def _children(node: ast.AST) -> list[ast.AST]:
    """Children searched for nested scopes; a scope's decorators run outside of it."""
    decorators = getattr(node, "decorator_list", ())
    return [c for c in ast.iter_child_nodes(node) if all(c is not d for d in decorators)]


class _ScopeIndex:
    """The scopes of one source text, each level collected once, when first asked for.

    `body(scope)` lists the scopes met depth-first in source order inside `scope` (its
    decorators excluded) without entering any of them; `decorators(scope)` the same for its
    decorator expressions. A recorder that describes 50 DDP constructions, each with a few
    repo frames, then walks each file's syntax tree once instead of a few times per frame.
    """

    def __init__(self, text: str) -> None:
        self.tree = _tree(text)
        self._body: dict[ast.AST, list[ast.AST]] = {}
        self._decorators: dict[ast.AST, list[ast.AST]] = {}

    def body(self, node: ast.AST) -> list[ast.AST]:
        found = self._body.get(node)
        if found is None:
            found = self._body[node] = _scopes_in(_children(node))
        return found

    def decorators(self, node: ast.AST) -> list[ast.AST]:
        found = self._decorators.get(node)
        if found is None:
            found = self._decorators[node] = _scopes_in(getattr(node, "decorator_list", ()))
        return found


def _scopes_in(nodes: Sequence[ast.AST]) -> list[ast.AST]:
    """Scope nodes under `nodes`, depth-first in source order, not entering any scope.

    Iterative, so generated code with very deep expressions cannot hit the recursion limit.
    """
    found: list[ast.AST] = []
    stack = list(reversed(nodes))
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES):
            found.append(node)
        else:
            stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return found


@lru_cache(maxsize=16)
def _scope_index(text: str) -> _ScopeIndex:
    return _ScopeIndex(text)


def _scope_chain(text: str, line: int) -> list[ast.AST]:
    """The scopes (outermost first) whose def..end_lineno lines contain `line`.

    Depth-first in source order; the first scope holding `line` is entered and the rest of
    its level dropped; a scope that does not hold it has its decorators searched (they run
    outside of it). Comprehensions are not scopes here.
    """
    index = _scope_index(text)
    chain: list[ast.AST] = []
    stack = list(reversed(index.body(index.tree)))
    while stack:
        node = stack.pop()
        if _contains(node, line):
            chain.append(node)
            stack = list(reversed(index.body(node)))
        else:
            stack.extend(reversed(index.decorators(node)))
    return chain


def qualname_at(text: str, line: int) -> str:
    """`__qualname__`-style name of the innermost function, class or lambda holding `line`.

    "Trainer.setup", "main.<locals>.inner", "main.<locals>.<lambda>"; "<module>" at top level.
    """
    parts: list[str] = []
    for node in _scope_chain(text, line):
        parts.append(_scope_name(node))
        if not isinstance(node, ast.ClassDef):
            parts.append("<locals>")
    if parts and parts[-1] == "<locals>":
        parts.pop()
    return ".".join(parts) or MODULE_QUALNAME


def function_span(text: str, line: int) -> tuple[int, int]:
    """(def line, end line) of the innermost function, class or lambda; the file at top level."""
    chain = _scope_chain(text, line)
    if not chain:
        return 1, len(source_lines(text))
    node = chain[-1]
    return node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def call_span(
    text: str, line: int, names: Sequence[str] = (), keywords: Sequence[str] = ()
) -> tuple[int, int]:
    """(line, end_line) of the call starting on `line`, for Pythons without co_positions.

    Before 3.11 a frame only knows the first line of a multi-line call. Of the calls that
    start there, prefer one whose callee is named in `names`, then the most keyword names
    in common with `keywords`, then the outermost; (line, line) when none starts there.
    """
    wanted, given = set(names), set(keywords)
    best: ast.Call | None = None
    best_score = (-1, -1)
    for node in ast.walk(_tree(text)):  # breadth first: outer calls come before inner ones
        if not isinstance(node, ast.Call) or node.lineno != line:
            continue
        score = (
            int(_callee_name(node.func) in wanted),
            len(given.intersection(k.arg for k in node.keywords if k.arg)),
        )
        if score > best_score:
            best, best_score = node, score
    if best is None:
        return line, line
    return line, best.end_lineno or line


def describe_call(rel: str, text: str, line: int, end_line: int) -> dict[str, Any]:
    """A call at lines line..end_line of repo file `rel` as evidence records it."""
    lines = source_lines(text)
    return {
        "path": rel,
        "line": line,
        "end_line": end_line,
        "qualname": qualname_at(text, line),
        "lines_sha256": lines_sha256(lines, line, end_line),
    }


def describe_frame(rel: str, text: str, line: int) -> dict[str, Any]:
    """A repo frame at `line` of `rel`, with its enclosing function's span and hash."""
    start, end = function_span(text, line)
    return {
        "path": rel,
        "line": line,
        "qualname": qualname_at(text, line),
        "function": {
            "line": start,
            "end_line": end,
            "lines_sha256": lines_sha256(source_lines(text), start, end),
        },
    }


def evidence_name(host: str, pid: int) -> str:
    """`evidence-<host>-<pid>-<ns>.json`: one file per process, never reused."""
    safe_host = re.sub(r"[^A-Za-z0-9._-]", "_", host) or "host"
    return f"evidence-{safe_host}-{pid}-{time.time_ns()}.json"


def write_json(path: str, doc: Any) -> None:
    """Replace `path` atomically: a reader (or a killed run) sees the old file or the new."""
    write_text(path, json.dumps(doc, indent=1) + "\n")


def write_text(path: str, text: str) -> None:
    """Replace `path` atomically with `text`. A failed write (a full disk) removes its
    temporary file: a run that fails every second must not litter the folder."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, "." + name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
