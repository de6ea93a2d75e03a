"""Removing the keyword in every position, layout and comment arrangement.

Each generated call is rewritten through the real pipeline (including the token-level
verifier); the result must parse to the same call minus the keyword and keep every
comment except the removed argument's own trailing one.
"""

from __future__ import annotations

import ast
import io
import itertools
import tokenize
from collections import Counter
from pathlib import Path

import pytest

from codemod.process import Context, process
from codemod.sites.python import FileContext
from codemod.sites.subclasses import Subclasses
from codemod.verdicts.allowlist import Allowlist, Selector

KEYWORD = "find_unused_parameters=True"
HEAD = "from torch.nn.parallel import DistributedDataParallel as DDP\n"


def _layout(args: list[str], layout: str, comments: set[str]) -> str:
    k = args.index(KEYWORD)
    if layout == "inline":
        return "m = DDP(" + ", ".join(args) + ")\n"
    lines: list[str] = []
    for i, arg in enumerate(args):
        if "above-k" in comments and i == k:
            lines.append("    # above-k")
        if "below-k" in comments and i == k + 1:
            lines.append("    # below-k")
        last = i == len(args) - 1
        comma = "" if last and layout != "exploded" else ","
        text = f"    {arg}{comma}"
        if "on-k" in comments and i == k:
            text += "  # on-k"
        if "on-prev" in comments and i == k - 1:
            text += "  # on-prev"
        lines.append(text)
    if "below-k" in comments and k == len(args) - 1:
        lines.append("    # below-k")
    if layout == "hanging":
        body = "\n".join(lines).lstrip()
        if body.endswith(("# on-k", "# on-prev", "# below-k")):
            return "m = DDP(" + body + "\n)\n"
        return "m = DDP(" + body + ")\n"
    return "m = DDP(\n" + "\n".join(lines) + "\n)\n"


def _comments(text: str) -> Counter[str]:
    return Counter(
        t.string
        for t in tokenize.generate_tokens(io.StringIO(text).readline)
        if t.type == tokenize.COMMENT
    )


def _call(text: str) -> str:
    return ast.dump(ast.parse(text).body[-1])


CASES = [
    pytest.param(
        before,
        after,
        layout,
        comments,
        id=f"{before}-{after}-{layout}-{'+'.join(sorted(comments)) or 'plain'}",
    )
    for before, after, layout in itertools.product(
        (0, 1, 2), (0, 1, 2), ("inline", "hanging", "exploded", "exploded-bare")
    )
    for comments in (
        [set()]
        if layout == "inline"
        else [
            set(),
            {"on-k"},
            {"on-prev"},
            {"above-k"},
            {"below-k"},
            {"on-k", "on-prev", "above-k", "below-k"},
        ]
    )
    if not ({"on-prev"} & comments and before == 0)
]


@pytest.mark.parametrize(("before", "after", "layout", "comments"), CASES)
def test_remove_keyword(before: int, after: int, layout: str, comments: set[str]):
    args = [f"a{i}" for i in range(before)] + [KEYWORD]
    args += [f"b{i}=1" for i in range(after - 1)] + (["**extra"] if after else [])
    old = HEAD + _layout(args, layout, comments)
    want_args = [a for a in args if a != KEYWORD]
    ctx = Context(
        Allowlist([Selector.parse("t.py", "--allow", Path("/r"))]), Subclasses(), True, False
    )
    outcome = process(FileContext(Path("/r/t.py"), "t.py", "t.py", "t", False), old.encode(), ctx)
    assert outcome.errors == [], old
    assert outcome.new is not None
    new = outcome.new.decode()
    assert _call(new) == _call(HEAD + "m = DDP(" + ", ".join(want_args) + ")\n"), new
    expected_comments = _comments(old) - Counter({"# on-k": 1})
    assert _comments(new) == expected_comments, new
    assert "find_unused_parameters" not in new
    if not comments and layout == "inline":
        assert new == HEAD + "m = DDP(" + ", ".join(want_args) + ")\n"
