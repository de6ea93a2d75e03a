"""Command-line flags passed from Python: argv lists, command strings, `sys.argv`.

`subprocess.run([..., "--find-unused-parameters"])`, `os.system("... --find-unused-params")`,
`sys.argv = [..., "--find_unused_parameters"]` or `parser.parse_args([...])` hand the flag to
a training script exactly as a shell script does, so each is a `shell` site, report only,
on the string that holds it. Defining a flag is plumbing, not a setting: strings in
`add_argument(...)`, help texts, error messages and flag lists stored as data reach no
command line and are never sites. A list bound to a name is followed one step: to a
command call, `sys.argv`, or `parse_args` in the same function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING

from codemod.model import Fix, Kind
from codemod.sites import catalogue, shell_scripts
from codemod.sites.names import dotted_name

if TYPE_CHECKING:
    from codemod.sites.names import Scope
    from codemod.sites.python import Finder

# Calls that run their string arguments as a command line.
COMMANDS = frozenset(
    {f"subprocess.{n}" for n in ("run", "call", "check_call", "check_output", "Popen")}
    | {f"os.{n}" for n in ("system", "popen")}
    | {f"os.exec{s}" for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")}
    | {f"os.spawn{s}" for s in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")}
    | {"asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell"}
)
# argparse methods that take an argv list first: `parser.parse_args(["--flag"])`.
ARGV_METHODS = frozenset(
    {"parse_args", "parse_known_args", "parse_intermixed_args", "parse_known_intermixed_args"}
)
_GROW = frozenset({"append", "extend", "insert"})  # cmd.append("--flag")
_SEQUENCES = (ast.List, ast.Tuple)


def _text(node: ast.AST) -> str | None:
    """The string's text; an f-string's replacement fields stand as `{...}`."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{...}"
            for v in node.values
        )
    return None


def _is_wrapper(finder: Finder, call: ast.Call) -> bool:
    """Calls that turn one command spelling into another: `shlex.split`, `" ".join`."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "join":
        return isinstance(func.value, ast.Constant) or dotted_name(func.value) == "shlex"
    return bool({"shlex.split", "shlex.join"} & finder.table.resolve(func, finder.scope))


def _is_argv(finder: Finder, expr: ast.expr) -> bool:
    if isinstance(expr, ast.Subscript):  # sys.argv[1:] = [...]
        expr = expr.value
    return finder.table.resolve(expr, finder.scope) == {"sys.argv"}


def _argument(call: ast.Call, child: ast.AST) -> bool:
    """`child` is what the call runs: a positional argument or `args=`."""
    return any(a is child for a in call.args) or (
        isinstance(child, ast.keyword) and child.arg == "args"
    )


def _call_destination(finder: Finder, call: ast.Call, child: ast.AST) -> str | None:
    """Where `child`, an argument of `call`, ends up: the command's name, or None."""
    if not _argument(call, child):
        return None
    func = call.func
    names = {n for n in finder.table.resolve(func, finder.scope) if n}
    command = sorted(names & COMMANDS)
    if command:
        return command[0]
    if isinstance(func, ast.Attribute):
        if func.attr in ARGV_METHODS:  # the argv list comes first
            first = call.args[0] if call.args else None
            return func.attr if child is first or isinstance(child, ast.keyword) else None
        if func.attr in _GROW:
            if _is_argv(finder, func.value):
                return "sys.argv"
            if isinstance(func.value, ast.Name):
                return _followed(finder, func.value.id)
    return None


def _statement_destination(finder: Finder, stmt: ast.Assign | ast.AugAssign) -> str | None:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    if isinstance(stmt, ast.AugAssign) and not isinstance(stmt.op, ast.Add):
        return None
    if any(_is_argv(finder, t) for t in targets):
        return "sys.argv"
    if len(targets) == 1 and isinstance(targets[0], ast.Name):
        return _followed(finder, targets[0].id)
    return None


def destination(finder: Finder, string: ast.AST) -> str | None:
    """The command line a string reaches (a command's name, `sys.argv`, `parse_args`), or
    None when it is data: climbs through lists, `+`, `shlex.split` and `" ".join`."""
    parents = finder.parents
    index = max(i for i, node in enumerate(parents) if node is string)
    child: ast.AST = string
    for parent in reversed(parents[:index]):
        if isinstance(parent, (*_SEQUENCES, ast.Starred)) or (
            isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add)
        ):
            child = parent
        elif isinstance(parent, ast.keyword):
            if parent.arg != "args":
                return None
            child = parent
        elif isinstance(parent, ast.Call):
            if child is parent.func:
                return None
            if not _is_wrapper(finder, parent):
                return _call_destination(finder, parent, child)
            child = parent
        elif isinstance(parent, (ast.Assign, ast.AugAssign)):
            return _statement_destination(finder, parent)
        else:
            return None
    return None


def _own_nodes(scope: Scope) -> Iterator[ast.AST]:
    """Nodes of one function (or module) body, not of the functions and classes in it."""
    stack = list(ast.iter_child_nodes(scope.node))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _feeds(expr: ast.AST, name: str) -> bool:
    """`expr` passes the list named `name` on whole: `cmd`, `cmd + [...]`, `" ".join(cmd)`."""
    if isinstance(expr, ast.keyword):
        return expr.arg == "args" and _feeds(expr.value, name)
    if isinstance(expr, ast.Name):
        return expr.id == name
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return _feeds(expr.left, name) or _feeds(expr.right, name)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
        wrapper = expr.func.attr in ("join", "split")
        return wrapper and any(_feeds(a, name) for a in expr.args)
    return False


def _followed(finder: Finder, name: str) -> str | None:
    """Where the list bound to `name` goes in the same function: one step, no further."""
    for node in _own_nodes(finder.scope):
        if isinstance(node, ast.Call):
            func = node.func
            grows_own = isinstance(func, ast.Attribute) and dotted_name(func.value) == name
            for arg in [*node.args, *node.keywords]:
                if grows_own or not _feeds(arg, name):
                    continue
                names = {n for n in finder.table.resolve(func, finder.scope) if n}
                command = sorted(names & COMMANDS)
                if command:
                    return command[0]
                if isinstance(func, ast.Attribute) and func.attr in ARGV_METHODS:
                    return func.attr
                grows_argv = isinstance(func, ast.Attribute) and func.attr in _GROW
                if grows_argv and _is_argv(finder, func.value):
                    return "sys.argv"
        elif isinstance(node, (ast.Assign, ast.AugAssign)) and _feeds(node.value, name):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_is_argv(finder, t) for t in targets):
                return "sys.argv"
    return None


def _next_value(finder: Finder, string: ast.AST) -> str:
    """In an argv list, the element after a bare flag when it reads as a boolean."""
    parent = finder.parents[-2] if len(finder.parents) > 1 else None
    if not isinstance(parent, _SEQUENCES):
        return ""
    elements = parent.elts
    index = next(i for i, e in enumerate(elements) if e is string)
    following = _text(elements[index + 1]) if index + 1 < len(elements) else None
    return following if following and following.lower() in shell_scripts.BOOL_WORDS else ""


@catalogue.node(ast.Constant, ast.JoinedStr)
def command_line_flag(finder: Finder, node: ast.Constant | ast.JoinedStr) -> None:
    text = _text(node)
    if text is None or len(finder.parents) < 2 or isinstance(finder.parents[-2], ast.JoinedStr):
        return  # not a string, or a piece of an f-string, which is looked at whole
    found = list(shell_scripts.flags(text))
    if not found:
        return
    callee = destination(finder, node)
    if callee is None:
        return
    for _, _, setting, value in found:
        edit = finder.edit("none", node, setting)
        finder.add(
            node,
            node,
            Kind.SHELL,
            setting,
            node,  # type: ignore[arg-type]
            Fix.WRITE_FALSE,
            callee,
            edit,
            report_only=shell_scripts.REASON,
            value_text=value or _next_value(finder, node),
        )
