"""Decide, for each site, whether it may be rewritten and say why in one sentence.

The rule that outranks all others lives here: nothing becomes rewritable without
evidence or an allowlist entry that covers it, and evidence of an unused parameter or of
changed code overrides the allowlist.
"""

from __future__ import annotations

import dataclasses

from codemod.model import Coverage, Kind, Site, State, Verdict
from codemod.verdicts.allowlist import Allowlist, Selector


def _with(site: Site, verdict: Verdict, reason: str, coverage: Coverage | None = None) -> Site:
    if coverage is None:
        return dataclasses.replace(site, verdict=verdict, reason=reason)
    return dataclasses.replace(
        site,
        verdict=verdict,
        reason=reason,
        unused=tuple(sorted(coverage.unused.items())),
        evidence=coverage.runs,
        unexercised=coverage.unexercised,
        fixed_by_config=coverage.fixed_by_config,
    )


def decide(
    site: Site, allowlist: Allowlist, coverage: Coverage | None = None
) -> tuple[Site, Selector | None]:
    """The site with its verdict and reason, and the selector that covered it, if any."""
    if site.report_only:
        return _with(site, Verdict.DYNAMIC, site.report_only, coverage), None
    if site.literal is None:
        reason = (
            f"the value `{site.value}` is not a literal True or False, "
            "so only a run can tell; report only"
        )
        return _with(site, Verdict.DYNAMIC, reason, coverage), None
    if site.literal is False:
        return _with(site, Verdict.OFF, "already off"), None
    if site.keep:
        return _with(site, Verdict.KEPT, "marked `# ddp-codemod: keep`", coverage), None
    spans = (site.span,) if site.feeds is None else (site.span, site.feeds)
    selector = allowlist.covering(site.file, spans, site.qualname)
    if site.kind == Kind.KWARGS_DICT and site.feeds is None:
        allowed = f"allowlisted by `{selector.text}`, but " if selector else ""
        reason = f"{allowed}this kwargs dict is left alone: {site.note}"
        return _with(site, Verdict.UNKNOWN, reason), selector
    if coverage is not None:
        if coverage.state is State.UNSAFE:
            return _with(site, Verdict.UNSAFE, coverage.reason, coverage), selector
        if coverage.state is State.STALE:
            return _with(site, Verdict.STALE, coverage.reason, coverage), selector
        if coverage.state is State.SAFE:
            return _with(site, Verdict.SAFE, coverage.reason, coverage), selector
        if coverage.state is State.BLOCKED:  # the allowlist on a base does not cover its heirs
            return _with(site, Verdict.UNKNOWN, coverage.reason, coverage), selector
    if selector is not None:
        reason = f"allowlisted by `{selector.text}` ({selector.origin})"
        return _with(site, Verdict.ALLOWED, reason, coverage), selector
    if coverage is not None:  # thin or ambiguous evidence
        return _with(site, Verdict.UNKNOWN, coverage.reason + "; left unchanged", coverage), None
    reason = "no evidence or allowlist entry covers this site; left unchanged"
    if site.implicit:  # the flag is not written: say why it is on, and what would tell
        reason = (
            f"{site.implicit}; no evidence or allowlist entry covers it "
            "(a traced run decides); left unchanged"
        )
    return _with(site, Verdict.UNKNOWN, reason), None
