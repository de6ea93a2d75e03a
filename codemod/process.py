"""One Python file, start to finish: decode, parse, find, decide, rewrite, verify.

A pure function of the file's bytes and the run's context, so files can be processed in
any order or in parallel; every problem becomes a FileError, never an exception.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper

from codemod.allowlist import Allowlist
from codemod.evidence import Instance
from codemod.finder import FileContext, Found, find_sites
from codemod.model import FileError, FileOutcome, Fix
from codemod.pairing import cover
from codemod.project import DEFAULT_MIN_STEPS
from codemod.rewrite import new_value_token, rewrite
from codemod.source import SourceError, decode, lines_of, round_trips
from codemod.subclasses import Subclasses
from codemod.verdicts import decide
from codemod.verify import Change, check

_PY2_HINTS = re.compile(
    r"^\s*(print\s+[^\s(=]|exec\s+['\"]|raise\s+\w+\s*,)|except\s+[\w.]+\s*,\s*\w+\s*:|`|<>"
)


@dataclass(frozen=True)
class Context:
    """What a file needs from the run around it."""

    allowlist: Allowlist
    subclasses: Subclasses
    rewrite: bool  # compute new bytes for rewritable sites
    style_false: bool  # --style false: write False instead of removing
    evidence: Mapping[str, list[Instance]] = field(default_factory=dict)  # by repo path
    min_steps: int = DEFAULT_MIN_STEPS


def _syntax_error(exc: cst.ParserSyntaxError, text: str) -> str:
    """Python's own message where it has one: libcst's positions can be off by a line."""
    line, column, message = exc.raw_line, exc.raw_column + 1, ""
    try:
        ast.parse(text)
    except SyntaxError as py_exc:
        line, column, message = py_exc.lineno or line, py_exc.offset or column, py_exc.msg
    except (ValueError, RecursionError, MemoryError):
        pass
    lines = lines_of(text)
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    hint = " (Python 2 code?)" if _PY2_HINTS.search(source_line) else ""
    detail = f": {message}" if message else ""
    return f"syntax error at line {line}, column {column}{detail}{hint}"


def process(file: FileContext, data: bytes, ctx: Context) -> FileOutcome:
    outcome = FileOutcome()

    def fail(message: str) -> FileOutcome:
        outcome.errors.append(FileError(file.rel, message))
        return outcome

    try:
        source = decode(data)
    except SourceError as exc:
        return fail(str(exc))
    try:
        module = cst.parse_module(source.text)
        found = find_sites(
            MetadataWrapper(module, unsafe_skip_copy=True), source.text, file, ctx.subclasses
        )
    except cst.ParserSyntaxError as exc:
        return fail(_syntax_error(exc, source.text))
    except RecursionError:
        return fail("too deeply nested to parse")

    instances = ctx.evidence.get(file.project_rel, [])
    coverage = (
        cover(
            [f.site for f in found],
            file.project_rel,
            lines_of(source.text),
            instances,
            ctx.min_steps,
        )
        if instances
        else {}
    )
    chosen: list[Found] = []
    for index, item in enumerate(found):
        site, selector = decide(item.site, ctx.allowlist, coverage.get(index))
        if ctx.style_false and site.fix is Fix.REMOVE:
            site = dataclasses.replace(site, fix=Fix.WRITE_FALSE)
        if selector is not None:
            outcome.matched_selectors.add(selector.text)
        if site.rewritable:
            chosen.append(Found(site, item.edit))
        outcome.sites.append(site)

    if not (ctx.rewrite and chosen):
        return outcome
    if not round_trips(source, data):
        return fail("not rewritten: its bytes do not survive decoding and encoding unchanged")
    new_text = rewrite(module, [(f.edit, f.site.fix) for f in chosen]).code
    changes = [(Change(f.site.fix, f.edit.span, f.edit.value_span), _new_token(f)) for f in chosen]
    problem = check(source.text, new_text, changes)
    if problem is not None:
        return fail(f"not rewritten: {problem} (a bug in ddp-codemod; please report it)")
    outcome.old, outcome.new = data, source.encode(new_text)
    done = {id(f.site) for f in chosen}
    outcome.sites = [
        dataclasses.replace(s, changed=True) if id(s) in done else s for s in outcome.sites
    ]
    return outcome


def _new_token(found: Found) -> str:
    if found.site.fix is Fix.REMOVE:
        return ""
    value = found.edit.target.value  # type: ignore[attr-defined]  # Arg, DictElement, Assign
    return new_value_token(value, found.site.fix)
