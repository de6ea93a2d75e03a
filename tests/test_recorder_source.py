"""The source helpers both sides share: decoding, line splitting, hashes, qualnames, spans.

The static side and the recorder pair evidence with sites only through these values, so
each is pinned here on its own, and the recorder files are held to Python 3.8 syntax.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from codemod.recorder import FOLDER
from codemod.recorder._ddp_codemod_source import (
    call_span,
    function_span,
    lines_sha256,
    qualname_at,
    read_source,
    source_lines,
)

# Each line that ends in `# q: NAME` must get qualname NAME.
QUALNAMES = """\
import functools  # q: <module>
x = [lambda: 1 for _ in range(2)]  # q: <lambda>


class Trainer:  # q: Trainer
    rate = 0.1  # q: Trainer
    pick = staticmethod(lambda a: a)  # q: Trainer.<lambda>

    @functools.partial(  # q: Trainer
        lambda f, tag: f, tag=1  # q: Trainer.<lambda>
    )  # q: Trainer
    def setup(  # q: Trainer.setup
        self,
    ):
        model = [i for i in range(3)]  # q: Trainer.setup
        return model  # q: Trainer.setup

    class Inner:  # q: Trainer.Inner
        def step(self):  # q: Trainer.Inner.step
            pass  # q: Trainer.Inner.step


def main():  # q: main
    def inner():  # q: main.<locals>.inner
        return 1  # q: main.<locals>.inner

    key = sorted(  # q: main
        [3, 1], key=lambda v: (  # q: main.<locals>.<lambda>
            v  # q: main.<locals>.<lambda>
        )  # q: main.<locals>.<lambda>
    )  # q: main
    squares = {k: (lambda: k) for k in range(3)}  # q: main.<locals>.<lambda>

    class Local:  # q: main.<locals>.Local
        def meth(self):  # q: main.<locals>.Local.meth
            return [lambda: 0]  # q: main.<locals>.Local.meth.<locals>.<lambda>

    return inner, key, squares, Local  # q: main


async def serve():  # q: serve
    async with open_thing() as t:  # q: serve
        return t  # q: serve
y = 2  # q: <module>
"""


def _marked_lines() -> list[tuple[int, str]]:
    cases = []
    for number, line in enumerate(source_lines(QUALNAMES), start=1):
        match = re.search(r"# q: (\S+)$", line)
        if match:
            cases.append((number, match.group(1)))
    return cases


@pytest.mark.parametrize(("line", "expected"), _marked_lines())
def test_qualname_at(line: int, expected: str):
    assert qualname_at(QUALNAMES, line) == expected


def test_qualname_matches_python_for_plain_functions_and_methods():
    namespace: dict[str, object] = {"open_thing": None}
    exec(compile(QUALNAMES, "<qualnames>", "exec"), namespace)
    trainer = namespace["Trainer"]
    for function in (trainer.setup, trainer.Inner.step, namespace["main"], namespace["serve"]):  # type: ignore[attr-defined]
        last = max(line for _, _, line in function.__code__.co_lines() if line)
        assert qualname_at(QUALNAMES, last) == function.__qualname__
    inner, _, _, local = namespace["main"]()  # type: ignore[operator]
    assert qualname_at(QUALNAMES, inner.__code__.co_firstlineno) == inner.__qualname__
    assert qualname_at(QUALNAMES, local.meth.__code__.co_firstlineno) == local.meth.__qualname__


def test_function_span_starts_at_def_not_decorator():
    lines = source_lines(QUALNAMES)
    setup = next(i for i, text in enumerate(lines, 1) if "def setup(" in text)
    inside = setup + 3  # `model = ...`
    assert function_span(QUALNAMES, inside) == (setup, setup + 4)
    trainer = next(i for i, text in enumerate(lines, 1) if text.startswith("class Trainer"))
    trainer_end = next(
        i for i, text in enumerate(lines, 1) if "Inner.step" in text and "pass" in text
    )
    assert function_span(QUALNAMES, setup - 1) == (trainer, trainer_end)  # a decorator line


def test_function_span_at_module_level_is_the_whole_file():
    text = "a = 1\nb = 2\n"
    assert function_span(text, 2) == (1, 3)  # three lines: "a = 1", "b = 2", ""
    assert qualname_at(text, 2) == "<module>"


def test_source_lines_splits_like_the_tokenizer():
    assert source_lines("a\r\nb\rc\nd") == ["a", "b", "c", "d"]
    assert source_lines("x\n") == ["x", ""]


def test_lines_sha256_hashes_the_joined_lines():
    lines = ["one", "two", "three"]
    assert lines_sha256(lines, 2, 3) == hashlib.sha256(b"two\nthree").hexdigest()
    assert lines_sha256(lines, 1, 1) == hashlib.sha256(b"one").hexdigest()


def test_lines_sha256_ignores_line_endings_and_bom(tmp_path: Path):
    unix, dos = tmp_path / "unix.py", tmp_path / "dos.py"
    unix.write_bytes(b"x = 1\ny = 2\n")
    dos.write_bytes(b"\xef\xbb\xbfx = 1\r\ny = 2\r\n")
    hashes = {lines_sha256(source_lines(read_source(str(path))), 1, 2) for path in (unix, dos)}
    assert len(hashes) == 1


def test_read_source_honours_the_encoding_cookie_and_strips_the_bom(tmp_path: Path):
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\nname = '\xe9'\n")
    assert read_source(str(latin)) == "# -*- coding: latin-1 -*-\nname = '\u00e9'\n"
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbfx = 1\n")
    assert read_source(str(bom)) == "x = 1\n"


CALLS = """\
model = wrap(DDP(
    net,
    find_unused_parameters=True,
), DDP(net))
other = build(
    DDP(net, device_ids=[0]),
    find_unused_parameters=True,
)
"""


@pytest.mark.parametrize(
    ("line", "names", "keywords", "expected"),
    [
        pytest.param(1, ["DDP"], [], (1, 4), id="callee-name-wins-over-outer-call"),
        pytest.param(1, [], [], (1, 4), id="outermost-when-nothing-matches"),
        pytest.param(5, [], ["find_unused_parameters"], (5, 8), id="keywords-pick-the-call"),
        pytest.param(6, ["DDP"], ["device_ids"], (6, 6), id="one-line-call"),
        pytest.param(9, ["DDP"], [], (9, 9), id="no-call-starts-there"),
    ],
)
def test_call_span(line: int, names: list[str], keywords: list[str], expected: tuple[int, int]):
    assert call_span(CALLS, line, names, keywords) == expected


def _reference_chain(text: str, line: int) -> list[ast.AST]:
    """The scope search as it was before the per-file index: a full walk per question."""

    def children(node: ast.AST) -> list[ast.AST]:
        decorators = getattr(node, "decorator_list", ())
        return [c for c in ast.iter_child_nodes(node) if all(c is not d for d in decorators)]

    chain: list[ast.AST] = []
    stack = list(reversed(children(ast.parse(text))))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if node.lineno <= line <= (node.end_lineno or node.lineno):
                chain.append(node)
                stack = list(reversed(children(node)))
                continue
            stack.extend(reversed(getattr(node, "decorator_list", ())))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return chain


def _spans(chain: list[ast.AST]) -> list[tuple[str, int, int]]:
    return [(type(n).__name__, n.lineno, n.end_lineno or n.lineno) for n in chain]  # type: ignore[attr-defined]


TRICKY = """\
@(lambda f: f)
def a(x=lambda: 1): return (lambda: 2, lambda: 3)
@dec(lambda: 0)
class B(base(lambda: 1)):
    f = g = lambda: (lambda: 4)
    @property
    def p(self): return [lambda: 5 for _ in ()]
"""


@pytest.mark.parametrize(
    "path",
    # small enough files: the reference walks the whole tree for each line
    [None, *(FOLDER / name for name in ("sitecustomize.py", "_ddp_codemod_source.py"))],
    ids=lambda p: "qualnames+tricky" if p is None else p.name,
)
def test_scope_search_matches_a_full_walk_on_every_line(path: Path | None):
    from codemod.recorder._ddp_codemod_source import _scope_chain

    texts = [QUALNAMES, TRICKY] if path is None else [read_source(str(path))]
    for text in texts:
        for line in range(len(source_lines(text)) + 2):
            assert _spans(_scope_chain(text, line)) == _spans(_reference_chain(text, line)), line


def test_each_scope_level_of_a_file_is_collected_once(monkeypatch: pytest.MonkeyPatch):
    """50 DDP constructions at one call site ask for the same lines 150 times: the syntax
    tree is walked once per scope level, not once per question (7.6 ms per construction)."""
    from codemod.recorder import _ddp_codemod_source as source

    walks: list[int] = []
    real = source._scopes_in
    monkeypatch.setattr(source, "_scopes_in", lambda nodes: walks.append(1) or real(nodes))
    text = QUALNAMES + "\n# a text no other test asked about\n"
    line = next(i for i, t in enumerate(source_lines(text), 1) if "Inner.step" in t)
    for _ in range(50):
        assert qualname_at(text, line) == "Trainer.Inner.step"
        function_span(text, line)
    assert len(walks) <= 8, len(walks)  # 4 bodies, the decorators of 4 scopes passed by


RECORDER_FILES = sorted(FOLDER.glob("*.py"))


def test_recorder_files_exist():
    names = {p.name for p in RECORDER_FILES}
    assert {"sitecustomize.py", "_ddp_codemod_recorder.py", "_ddp_codemod_source.py"} <= names


@pytest.mark.parametrize("path", RECORDER_FILES, ids=lambda p: p.name)
def test_recorder_file_is_python_38_syntax(path: Path):
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 8))


def test_feature_version_check_can_fail():
    with pytest.raises(SyntaxError):
        ast.parse("match x:\n    case 1:\n        pass\n", feature_version=(3, 8))


@functools.lru_cache(maxsize=1)
def _old_python() -> str | None:
    """A Python 3.8 that really runs (a pyenv shim may exist without its version)."""
    pyenv = sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.8*/bin/python"))
    for candidate in (*pyenv, shutil.which("python3.8")):
        if candidate is None:
            continue
        probe = [candidate, "-c", "import sys; print(sys.version_info[:2])"]
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == "(3, 8)":
            return candidate
    return None


@pytest.mark.skipif(_old_python() is None, reason="no Python 3.8 interpreter on this machine")
def test_recorder_modules_import_and_run_on_python_38():
    """Syntax is not enough: a 3.9-only call would only fail when it runs."""
    script = (
        "import _ddp_codemod_source as s, _ddp_codemod_recorder as r\n"
        "text = open('_ddp_codemod_recorder.py').read()\n"
        "line = text.splitlines().index('class Recorder:') + 2\n"
        "print(s.qualname_at(text, line), s.call_span('f(\\n a)\\n', 1, ['f']))\n"
        "print(r.Recorder({}).evidence()['format'])\n"
    )
    done = subprocess.run(
        [_old_python(), "-c", script],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Recorder (1, 2)", "ddp-codemod-evidence"]
