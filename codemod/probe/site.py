"""Resolve `--site SELECTOR` to exactly one site, and describe it the way the recorder would.

The static pipeline finds the sites of the selector's file and the allowlist's Selector picks
one, so `--site` means what `--allow` means. The description (repo-relative path, the call's
line span, qualname, hashes) comes from `_ddp_codemod_source`, the same helpers the recorder
uses, so the pairing treats a probe like a traced run of that call with no special case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codemod.discover.project import find_root
from codemod.model import CONFIG_KINDS, EVIDENCE_DIR, Kind, Site
from codemod.recorder import _ddp_codemod_source as source
from codemod.recorder._ddp_codemod_files import file_sha256
from codemod.verdicts.allowlist import Selector


class SiteError(Exception):
    """Why --site names no single site; one line."""


@dataclass(frozen=True)
class SiteRef:
    root: Path  # the project root: evidence paths are relative to it
    rel: str  # POSIX path of the site's file under root
    line: int
    kind: Kind
    label: str  # `damo/detectors/detector.py:8 (build_ddp_model)`, for the report
    call_site: dict[str, Any] | None  # recorder format; None for YAML and shell sites
    frames: tuple[dict[str, Any], ...]
    files_read: tuple[dict[str, str], ...]  # config sites pair through the file they are in
    marked: bool = True  # False: no repo root marker above the site; root is where probe ran


def _root(file: Path, cwd: Path) -> tuple[Path, bool]:
    """The site's project root, and whether a marker (.git, pyproject.toml) says so.

    Without one, find_root would fall back to the file's own folder; the evidence then goes
    where probe ran (when the file is under it), since that is where the user will scan.
    """
    root = find_root(file.parent)
    marker = (root / ".git").exists() or (root / "pyproject.toml").is_file()
    if marker or (root / EVIDENCE_DIR).is_dir():
        return root, True
    cwd = cwd.resolve()
    return (cwd, False) if file.is_relative_to(cwd) else (root, False)


def _describe(site: Site, cwd: Path) -> SiteRef:
    file = site.file.resolve()
    root, marked = _root(file, cwd)
    rel = file.relative_to(root).as_posix()
    span = site.feeds or site.span  # a kwargs dict: the DDP call it feeds, as recorded
    call_site = None
    frames: tuple[dict[str, Any], ...] = ()
    qualname = site.qualname
    if file.suffix == ".py":
        text = source.read_source(str(file))
        call_site = source.describe_call(rel, text, span.line, span.end_line)
        frames = (source.describe_frame(rel, text, span.line),)
        qualname = call_site["qualname"]
    files_read: tuple[dict[str, str], ...] = ()
    if site.kind in CONFIG_KINDS:
        files_read = ({"path": rel, "sha256": file_sha256(str(file))},)
    label = f"{rel}:{site.setting_span.line} ({qualname})"
    line = site.setting_span.line
    return SiteRef(root, rel, line, site.kind, label, call_site, frames, files_read, marked)


def resolve(text: str, cwd: Path) -> SiteRef:
    """The one site `text` selects (path relative to cwd, as for --allow); SiteError if not."""
    from codemod import api

    selector = Selector.parse(text, "--site", cwd)
    if selector.is_glob:
        raise SiteError(f"--site {text}: name one file, not a pattern")
    file = cwd / selector.path
    if not file.is_file():
        raise SiteError(f"--site {text}: no such file: {selector.path}")
    result = api.run(api.Request((selector.path,), cwd=cwd))
    for error in result.errors:  # not those about evidence files: the probe may replace them
        if error.path == selector.path:
            raise SiteError(f"--site {text}: {error.path}: {error.message}")
    chosen = [
        s
        for s in result.sites
        if selector.covers(s.file, (s.span,) if s.feeds is None else (s.span, s.feeds), s.qualname)
    ]
    if not chosen:
        raise SiteError(f"--site {text} matches no find_unused_parameters site")
    if len(chosen) > 1:
        lines = ", ".join(str(s.setting_span.line) for s in chosen)
        raise SiteError(
            f"--site {text} matches {len(chosen)} sites (lines {lines}); "
            f"name one with {selector.path}:LINE"
        )
    (site,) = chosen
    return _describe(site, cwd)
