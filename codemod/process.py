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

from codemod.allowlist import Allowlist
from codemod.evidence import Instance
from codemod.finder import FileContext, Found, find_sites
from codemod.model import Coverage, FileError, FileOutcome, Fix
from codemod.project import DEFAULT_MIN_STEPS
from codemod.source import SourceError, decode, lines_of, round_trips
from codemod.subclasses import Subclasses
from codemod.verdicts import decide
from codemod.verify import check

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


def _syntax_error(exc: SyntaxError, text: str) -> str:
    line, column = exc.lineno or 0, exc.offset or 0
    lines = lines_of(text)
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    hint = " (Python 2 code?)" if _PY2_HINTS.search(source_line) else ""
    return f"syntax error at line {line}, column {column}: {exc.msg}{hint}"


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
        tree = ast.parse(source.text)
    except SyntaxError as exc:
        return fail(_syntax_error(exc, source.text))
    except (ValueError, RecursionError, MemoryError) as exc:
        return fail(f"cannot parse: {exc}")
    found = find_sites(tree, source.text, file, ctx.subclasses)

    instances = ctx.evidence.get(file.project_rel, [])
    lines = lines_of(source.text)
    coverage: dict[int, Coverage] = {}
    if instances:
        from codemod.pairing import cover  # hashing: only when there is evidence

        coverage = cover([f.site for f in found], file.project_rel, lines, instances, ctx.min_steps)
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
    from codemod.rewrite import RewriteError, rewrite  # libcst: only for files that change

    try:
        new_text, changes = rewrite(source.text, [(f.edit, f.site.fix) for f in chosen])
    except RewriteError as exc:
        return fail(f"not rewritten: {exc} (a bug in ddp-codemod; please report it)")
    except Exception as exc:  # libcst cannot parse what ast could: newer syntax
        return fail(f"not rewritten: libcst cannot parse this file ({type(exc).__name__})")
    problem = check(source.text, new_text, changes)
    if problem is not None:
        return fail(f"not rewritten: {problem} (a bug in ddp-codemod; please report it)")
    outcome.old, outcome.new = data, source.encode(new_text)
    done = {id(f.site) for f in chosen}
    outcome.sites = [
        dataclasses.replace(s, changed=True) if id(s) in done else s for s in outcome.sites
    ]
    return outcome
