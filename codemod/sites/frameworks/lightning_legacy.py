"""Lightning before 2.0: DDP spellings that turned find_unused_parameters on unsaid.

Lightning 1.x injected `find_unused_parameters=True` when the strategy did not pass it
(`DDPPlugin` from 1.2.4, `DDPStrategy` / `DDPSpawnStrategy` in 1.6-1.9, also behind the
names "ddp" and "ddp_spawn"); Lightning PR #16611 made False the default in 2.0. So
`Trainer(strategy="ddp")`, `plugins="ddp"`, `accelerator="ddp"` (<= 1.4) and
`DDPStrategy()` / `DDPPlugin()` without the keyword are sites only where the repo pins
Lightning below 2.0 (`codemod.discover.pins`), report-only where it pins nothing, and not
sites under 2.x. Turned off by the explicit False: `"ddp_find_unused_parameters_false"`,
`DDPStrategy(find_unused_parameters=False)`. Kept apart from `lightning.py`, which handles
the spellings that name the flag.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from typing import TYPE_CHECKING

from codemod.discover.pins import Lightning, LightningPin
from codemod.model import Coverage, Fix, Site
from codemod.sites import catalogue
from codemod.sites.frameworks.lightning import LIGHTNING

if TYPE_CHECKING:
    from codemod.evidence.load import Process
    from codemod.sites.python import Finder

_PACKAGES = ("lightning", "pytorch_lightning")
_STRATEGIES = ("DDPStrategy", "DDPSpawnStrategy", "DDPPlugin", "DDPSpawnPlugin")
# names whose strategy or plugin defaulted to True in 1.x; a `_find_unused_parameters_false`
# twin is registered for each (plugins from 1.3 / 1.4, strategies from 1.5, fork 1.7)
_NAMES = re.compile(r"^(ddp|ddp_spawn|ddp_fork|ddp_notebook)$", re.IGNORECASE)
_REWRITTEN = ("strategy", "plugins")
_REPORTED = ("accelerator", "distributed_backend")  # <= 1.4: no one-token False spelling
_QUOTE = re.compile(r"(['\"]+)$")
_MAJOR = re.compile(r"(\d+)\.")

PINNED = (
    "Lightning before 2.0 turned find_unused_parameters on when {spelling} did not say "
    "(Lightning PR #16611 made False the default in 2.0), and the repo pins Lightning 1.x "
    "({pins})"
)
UNPINNED = (
    "Lightning before 2.0 turned find_unused_parameters on for {spelling} (2.0 made False "
    "the default, PR #16611), and the repo pins no Lightning version ({pins}): it depends "
    "on the installed Lightning; report only"
)
UNPINNED_RULE = (
    "Lightning before 2.0 turned find_unused_parameters on when {spelling} did not say "
    "(Lightning PR #16611 made False the default in 2.0), and the repo pins no Lightning "
    "version ({pins})"
)
SETTLED_OLD = ", but the traced runs used {used}, before 2.0"
SETTLED_REASON = "; the runs used {used}, which turned it on by default"
SETTLED_NEW = (
    "; the traced runs used {used}, under which it is off (2.0 made False the default), but "
    "another install may differ; report only"
)
OLD_ACCELERATOR = (
    "; `{keyword}=` has no one-token False spelling (use "
    '`plugins="ddp_find_unused_parameters_false"`, Lightning 1.3+); report only'
)
SPLAT = "; the call passes `**{splat}`, which may set it; report only"


def suffixed_false(literal: str) -> str:
    """`"ddp"` -> `"ddp_find_unused_parameters_false"`, case kept (`"DDP"` -> `..._FALSE`)."""
    quote = _QUOTE.search(literal)
    end = quote.start() if quote else len(literal)
    body = literal[:end]
    suffix = "_find_unused_parameters_false"
    return body + (suffix.upper() if body.isupper() else suffix) + literal[end:]


def _pin(finder: Finder) -> LightningPin:
    return finder.ctx.implicit.lightning or LightningPin(Lightning.UNPINNED)


def _lightning(qualname: str) -> bool:
    parts = qualname.split(".")
    return parts[0] in _PACKAGES and "fabric" not in parts and "lite" not in parts


def _trainer(finder: Finder, func: ast.expr) -> str | None:
    """`pl.Trainer`, `lightning.pytorch.Trainer`, `Trainer.from_argparse_args`."""
    for qualname in sorted(q for q in finder.table.resolve(func, finder.scope) if q):
        if not _lightning(qualname):
            continue
        if qualname.endswith((".Trainer", ".Trainer.from_argparse_args")):
            return qualname
    return None


def _strategy_class(finder: Finder, call: ast.Call) -> str | None:
    """The 1.x DDP strategy `call` builds, directly or through `lazy_instance(Cls, ...)`."""
    func = call.func
    for qualname in sorted(q for q in finder.table.resolve(func, finder.scope) if q):
        if catalogue.is_factory(qualname) and call.args:
            func = call.args[0]
            break
    for qualname in sorted(q for q in finder.table.resolve(func, finder.scope) if q):
        if _lightning(qualname) and qualname.rsplit(".", 1)[-1] in _STRATEGIES:
            return qualname
    return None


def _last_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _add(
    finder: Finder,
    call: ast.Call,
    setting: ast.AST,
    name: str,
    value: ast.expr,
    fix: Fix,
    callee: str,
    spelling: str,
    value_text: str | None = None,
    reported: str = "",
) -> None:
    pin = _pin(finder)
    if pin.version is Lightning.V2:
        return
    settles = ""
    if pin.version is Lightning.UNPINNED:
        report_only = UNPINNED.format(spelling=spelling, pins=pin.describe())
        implicit = ""
        if not reported:  # a traced run's recorded version may settle it (`settle`)
            implicit = UNPINNED_RULE.format(spelling=spelling, pins=pin.describe())
            settles = callee.split(".", 1)[0]
    else:
        implicit = PINNED.format(spelling=spelling, pins=pin.describe())
        report_only = implicit + reported if reported else ""
    if fix is Fix.ADD_FALSE:
        edit = finder.call_edit(call, name)
    else:
        assert isinstance(setting, ast.keyword) and setting.arg is not None
        edit = finder.edit("arg", setting, setting.arg)
    finder.add(
        call,
        setting,
        LIGHTNING,
        name,
        value,
        fix,
        callee,
        edit,
        literal=True if settles or not report_only else None,
        report_only=report_only,
        implicit=implicit,
        value_text=value_text,
        settles=settles,
    )


def _major(version: str) -> int | None:
    match = _MAJOR.match(version)
    return int(match.group(1)) if match else None


def settle(
    site: Site, coverage: Coverage | None, processes: list[Process]
) -> tuple[Site, Coverage | None]:
    """An unpinned site, once traced runs that ran its function recorded the Lightning
    they used: all 1.x, it is decided like a site the repo pins to 1.x (the version named
    in the reason); any 2.x, or any run that did not say, and it stays report only."""
    if not site.settles or not processes:
        return site, coverage
    versions = sorted({p.frameworks.get(site.settles) or "" for p in processes})
    majors = [_major(v) for v in versions]
    if not all(versions) or None in majors:
        return site, coverage  # a run that did not say, or a version we cannot read
    used = ", ".join(f"{site.settles} {v}" for v in versions)
    if any(m != 1 for m in majors):
        reason = site.report_only.removesuffix("; report only") + SETTLED_NEW.format(used=used)
        return dataclasses.replace(site, report_only=reason), coverage
    note = SETTLED_OLD.format(used=used)
    site = dataclasses.replace(site, report_only="", implicit=site.implicit + note)
    if coverage is not None:
        coverage = dataclasses.replace(
            coverage, reason=coverage.reason + SETTLED_REASON.format(used=used)
        )
    return site, coverage


@catalogue.node(ast.Call)
def legacy_defaults(finder: Finder, call: ast.Call) -> None:
    name = _last_name(call.func)
    if name in finder.implicit_names:  # `from pytorch_lightning import Trainer as PLTrainer`
        names = {q.rsplit(".", 1)[-1] for q in finder.table.resolve(call.func, finder.scope) if q}
        name = next((n for n in sorted(names) if n != name), name)
    if name in ("Trainer", "from_argparse_args"):
        callee = _trainer(finder, call.func)
        if callee is None:
            return
        for kw in call.keywords:
            value = kw.value
            text = value.value if isinstance(value, ast.Constant) else None
            if kw.arg not in (*_REWRITTEN, *_REPORTED) or not isinstance(text, str):
                continue
            if not _NAMES.match(text):
                continue
            source = finder.pos.source(finder.span_of(value))
            spelling = f"`{kw.arg}={source}`"
            reported = OLD_ACCELERATOR.format(keyword=kw.arg) if kw.arg in _REPORTED else ""
            _add(
                finder,
                call,
                kw,
                kw.arg,
                value,
                Fix.STRATEGY_FALSE,
                callee,
                spelling,
                None,
                reported,
            )
    elif name in _STRATEGIES or name == "lazy_instance":
        if any(kw.arg == catalogue.KEYWORD for kw in call.keywords):
            return  # written: lightning.py reports it
        callee = _strategy_class(finder, call)
        if callee is None:
            return
        func = finder.pos.source(finder.span_of(call.func))
        text = f"{func}({'...' if call.args or call.keywords else ''})"
        splats = [kw for kw in call.keywords if kw.arg is None]
        reported = ""
        if splats:
            reported = SPLAT.format(splat=finder.pos.source(finder.span_of(splats[0].value)))
        spelling = f"`{text}`"
        _add(
            finder,
            call,
            call.func,
            catalogue.KEYWORD,
            call,
            Fix.ADD_FALSE,
            callee,
            spelling,
            text,
            reported,
        )
