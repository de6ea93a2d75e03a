"""Decide, for each site, whether it may be rewritten and say why in one sentence.

The rule that outranks all others lives here: nothing becomes rewritable without an
allowlist entry (or, later, evidence) that covers it.
"""

from __future__ import annotations

import dataclasses

from codemod.allowlist import Allowlist, Selector
from codemod.model import Kind, Site, Verdict


def _with(site: Site, verdict: Verdict, reason: str) -> Site:
    return dataclasses.replace(site, verdict=verdict, reason=reason)


def decide(site: Site, allowlist: Allowlist) -> tuple[Site, Selector | None]:
    """The site with its verdict and reason, and the selector that covered it, if any."""
    if site.literal is None:
        return _with(
            site,
            Verdict.DYNAMIC,
            f"the value `{site.value}` is not a literal "
            "True or False, so only a run can tell; report only",
        ), None
    if site.literal is False:
        return _with(site, Verdict.OFF, "already off"), None
    if site.keep:
        return _with(site, Verdict.KEPT, "marked `# ddp-codemod: keep`"), None
    spans = (site.span,) if site.feeds is None else (site.span, site.feeds)
    selector = allowlist.covering(site.file, spans, site.qualname)
    if site.kind is Kind.KWARGS_DICT and site.feeds is None:
        allowed = f"allowlisted by `{selector.text}`, but " if selector else ""
        return _with(
            site, Verdict.UNKNOWN, f"{allowed}this kwargs dict is left alone: {site.note}"
        ), selector
    if selector is not None:
        return _with(
            site, Verdict.ALLOWED, f"allowlisted by `{selector.text}` ({selector.origin})"
        ), selector
    return _with(
        site, Verdict.UNKNOWN, "no evidence or allowlist entry covers this site; left unchanged"
    ), None
